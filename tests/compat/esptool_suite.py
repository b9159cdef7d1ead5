"""Run esptool's own hardware integration suite (`test/test_esptool.py`) against emu-rom.

What: fetches the suite at run time (never committed here), starts `emu-rom` on a loopback
RFC 2217 port with the DevKitC auto-reset wiring (so esptool's unmodified DTR/RTS reset
sequences really reset the emulated chip), runs the suite with `--port rfc2217://...
--chip esp32` and prints passed/failed/skipped counts, each failure, and whether it is one
of the failures a real board on this link would also have (docs/compat.md).

Where the suite comes from: the esptool sdist on PyPI of the installed version if it
contains `test/` (5.x sdists do not), else a git repository given with --git (a clone or
a bare git dir of github.com/espressif/esptool; tag v<version> if it has it, else --ref or
HEAD). Only package registries and loopback are used by default.

Usage: python tests/compat/esptool_suite.py [--cache DIR] [--git PATH] [--ref REF]
                                            [-k EXPR] [--jobs N] [--keep]
Exit code: 0 when every failure is an expected one, 1 otherwise, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from emulator.host.process import EmuRom  # noqa: E402

SUITE_FILES = ["test", "esp_rfc2217_server", "esp_rfc2217_server.py", "esptool.py",
               "espefuse.py", "espsecure.py"]

# Failures a real ESP32 DevKitC behind this link would show too (or that another part of
# issue 12 owns), keyed by test id prefix. Everything else is a defect of emu-rom.
EXPECTED = {
    "TestLoadRAM": "runs code in RAM: emu-rom does not execute Xtensa code",
    "TestVirtualPort::test_auto_detect_virtual_port":
        "needs modem lines on a local serial port: the suite's own esp_rfc2217_server "
        "resets through port.fileno() (UnixTightReset), which an RFC 2217 URL has not",
    "TestVirtualPort::test_highspeed_flash_virtual_port":
        "needs modem lines on a local serial port: the suite's own esp_rfc2217_server "
        "resets through port.fileno() (UnixTightReset), which an RFC 2217 URL has not",
    "TestConfigFile::test_open_port_attempts":
        "an esp_rfc2217_server-style link starts its own bootloader reset when opening "
        "the port asserts DTR (esp_rfc2217_server/esp_port_manager.py), so the test's "
        "deliberately useless custom reset sequence does not keep the chip out of "
        "download mode; the same with Espressif's server and a real board",
    "TestFlashing::test_write_image_for_another_target":
        "suite/tool version skew: esptool 5.6.0 only notes a foreign image at 0x0 and "
        "refuses it at the boot loader offset only (cmds._validate_image_compatibility)",
}


SHARES_FILES = {"TestFlashEncryption"}


def fail(message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    print(f"esptool-suite: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def suite_from_sdist(version: str, dest: Path) -> Path | None:
    """Unpack esptool's sdist; its source tree if it carries test/test_esptool.py."""
    work = dest / f"sdist-{version}"
    if (work / "test" / "test_esptool.py").is_file():
        return work
    no_suite = dest / f"sdist-{version}.no-test-suite"
    if no_suite.is_file():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
               "--no-deps", "--disable-pip-version-check", f"esptool=={version}", "-d", tmp]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return None
        archives = list(Path(tmp).glob("esptool-*.tar.gz"))
        if not archives:
            return None
        with tarfile.open(archives[0]) as tar:
            names = tar.getnames()
            if not any(n.endswith("/test/test_esptool.py") for n in names):
                print(f"esptool-suite: the esptool {version} sdist has no test/ folder")
                no_suite.touch()
                return None
            tar.extractall(dest, filter="data")
            (dest / names[0].split("/")[0]).rename(work)
    return work


def suite_from_git(git: str, ref: str | None, version: str, dest: Path) -> tuple[Path, str]:
    def git_cmd(*args: str) -> str:
        out = subprocess.run(["git", f"--git-dir={gitdir}", *args], capture_output=True,
                             text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    gitdir = git
    if (Path(git) / ".git").exists():
        gitdir = str(Path(git) / ".git")
    candidates = [ref] if ref else [f"v{version}", "HEAD"]
    commit = ""
    for candidate in candidates:
        commit = git_cmd("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if commit:
            ref = candidate
            break
    if not commit:
        fail(f"{git}: no commit {' or '.join(candidates)}")
    work = dest / f"git-{commit[:12]}"
    if not (work / "test" / "test_esptool.py").is_file():
        work.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", f"--git-dir={gitdir}", "archive", commit,
                                  *SUITE_FILES], capture_output=True)
        if archive.returncode != 0:
            fail(f"git archive {commit[:12]} failed: {archive.stderr.decode()[-300:]}")
        subprocess.run(["tar", "x", "-C", str(work)], input=archive.stdout, check=True)
    described = git_cmd("log", "-1", "--format=%h %ad %s", "--date=short", commit)
    return work, f"{ref} = {described}"


def expected_reason(test_id: str) -> str | None:
    for prefix, reason in EXPECTED.items():
        if test_id.startswith(prefix):
            return reason
    return None


def collect(src: Path, select: str | None) -> list[str]:
    """Test ids of the suite (as pytest prints them with --collect-only -q)."""
    cmd = [sys.executable, "-m", "pytest", "-c", os.devnull, "--rootdir", str(src / "test"),
           "-p", "no:cacheprovider", "test_esptool.py", "--chip", "esp32", "--collect-only",
           "-q"]
    if select:
        cmd += ["-k", select]
    out = subprocess.run(cmd, cwd=src / "test", capture_output=True, text=True)
    ids = [line.strip() for line in out.stdout.splitlines() if "::" in line]
    if not ids:
        fail(f"collected no tests: {out.stdout[-500:]}{out.stderr[-500:]}")
    return ids


def partition(ids: list[str], jobs: int) -> list[list[str]]:
    """Cut the suite, in its own order, into `jobs` contiguous runs of about equal size.
    Order matters: a test finds the board as the test before it left it (stub still
    running, app booted, ...), as on the one real board the suite is written for. Cuts
    fall on class boundaries where that keeps the runs within 25 % of each other; classes
    in SHARES_FILES (files in images/) are never cut."""
    jobs = max(1, min(jobs, len(ids)))
    target = len(ids) / jobs
    groups: list[list[str]] = [[]]
    for i, test_id in enumerate(ids):
        cls = test_id.split("::")[1]
        prev = ids[i - 1].split("::")[1] if i else None
        full = len(groups[-1]) >= target
        boundary = cls != prev
        if groups[-1] and len(groups) < jobs and (
                (full and boundary) or (len(groups[-1]) >= 1.25 * target
                                        and cls not in SHARES_FILES)):
            groups.append([])
        groups[-1].append(test_id)
    return groups


def start_run(src: Path, work: Path, k: int, ids: list[str]):
    run_dir = work / f"run{k}"
    run_dir.mkdir()
    # real timing: the UART paces the data as a board would. With --timing fast emu-rom
    # answers a 1 MB READ_FLASH faster than pyserial's RFC 2217 reader thread can take it,
    # and its acknowledgement of the next port-settings change arrives too late.
    emu = EmuRom(run_dir, ["--rfc2217", "0", "--wiring", "devkitc", "--timing", "real"],
                 name="board").start()
    port = emu.port.replace("localhost", "127.0.0.1")
    report = run_dir / "report.xml"
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    cmd = [sys.executable, "-m", "pytest", "-c", str(run_dir / "pytest.ini"), "--rootdir",
           str(src / "test"), "-p", "no:cacheprovider", *ids, "--port", port, "--chip",
           "esp32", "-q", "-rfE", "--timeout", "600", f"--junitxml={report}"]
    # the suite also runs the installed wrapper scripts (esptool.py -h) from PATH
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                   os.environ.get("PATH", "")])}
    log = open(run_dir / "pytest.log", "w")
    proc = subprocess.Popen(cmd, cwd=src / "test", stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    log.close()
    print(f"esptool-suite: run {k}: {len(ids)} tests on {port}, log {run_dir / 'pytest.log'}")
    return emu, proc, report


def summarize(reports: list[Path]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures: list[tuple[str, str]] = []
    cases = [case for report in reports for case in ET.parse(report).iter("testcase")]
    for case in cases:
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            counts["failed"] += 1
            message = (problem.get("message") or "").strip().splitlines()
            failures.append((test_id, message[0][:160] if message else ""))
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument("--cache", type=Path, default=cache_home / "romlab" / "esptool-suite")
    parser.add_argument("--git", help="esptool git repository (clone or git dir)")
    parser.add_argument("--ref", help="commit or tag in --git (default v<esptool version>, "
                                      "else HEAD)")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset)")
    parser.add_argument("--jobs", type=int, default=4,
                        help="parallel runs, each with its own emu-rom (default 4: the "
                             "suite mostly waits on pyserial's RFC 2217 acknowledgements)")
    parser.add_argument("--keep", action="store_true", help="keep the emulator's work dir")
    args = parser.parse_args(argv)

    version = importlib.metadata.version("esptool")
    args.cache.mkdir(parents=True, exist_ok=True)
    src = suite_from_sdist(version, args.cache)
    origin = f"esptool {version} sdist"
    if src is None:
        if not args.git:
            fail(f"the esptool {version} sdist carries no test suite; pass --git PATH "
                 "(a clone of github.com/espressif/esptool), e.g. "
                 "make esptool-suite ESPTOOL_GIT=~/src/esptool")
        src, origin = suite_from_git(args.git, args.ref, version, args.cache)
    print(f"esptool-suite: suite {origin}; esptool under test {version}")

    work = Path(tempfile.mkdtemp(prefix="esptool-suite-"))
    groups = partition(collect(src, args.select), args.jobs)
    print(f"esptool-suite: {sum(map(len, groups))} tests in {len(groups)} parallel runs, "
          "each against its own emu-rom (RFC 2217, --wiring devkitc, real timing)")
    runs = []
    try:
        for k, ids in enumerate(groups):
            runs.append(start_run(src, work, k, ids))
        for _, proc, _ in runs:
            proc.wait()
    finally:
        for emu, proc, _ in runs:
            if proc.poll() is None:
                proc.terminate()
            emu.stop()
    reports = []
    for emu, _, report in runs:
        if not report.is_file():
            fail(f"pytest wrote no report; emulator log: {emu.log_path}")
        reports.append(report)
    counts, failures = summarize(reports)
    unexpected = [(t, m) for t, m in failures if expected_reason(t) is None]
    print()
    print(f"esptool-suite: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped ({len(unexpected)} unexpected failures)")
    for test_id, message in failures:
        reason = expected_reason(test_id)
        tag = f"expected: {reason}" if reason else "UNEXPECTED"
        print(f"  FAILED {test_id} [{tag}]\n         {message}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"esptool-suite: work dir kept: {work}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())
