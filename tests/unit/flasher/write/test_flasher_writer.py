"""The writer and the survey against a fake board: what is asked, what is written, retries."""

from __future__ import annotations

import random

import pytest

from flasher.bundle import builder as bundles
from flasher.bundle.plan import Plan, PlanOptions, build_plan
from flasher.errors import WriteError
from flasher.write.dedupe import SECTOR
from flasher.write.survey import first_bad_sector, survey_region
from flasher.write.writer import WriteOptions, verify_plan, write_plan
from tests.support.fakes import FakeTarget

MB = 1 << 20




def plan_of(builder: bundles.BundleBuilder, size: int = 4 * MB) -> Plan:
    from flasher.bundle.archive import Bundle
    with Bundle.open(builder.stream()) as bundle:
        return build_plan(bundle, PlanOptions(flash_size=size))


@pytest.mark.parametrize("era", sorted(bundles.ERAS))
def test_first_flash_writes_the_plan_image(era):
    plan = plan_of(bundles.ERAS[era]())
    target = FakeTarget()
    report = write_plan(plan, target)
    assert bytes(target.flash) == plan.image(4 * MB)
    assert report.verified and report.bytes_written > 0
    # blank device: one MD5 per region (these are < 512 KB) to learn it is blank, one per
    # touched 64 KB block to verify
    assert len(target.md5_calls) <= len(plan.regions) + sum(
        -(-r.size // 0x10000) + 1 for r in plan.regions)


def test_rerun_writes_nothing_and_asks_one_md5_per_region():
    plan = plan_of(bundles.era_2018())
    target = FakeTarget()
    write_plan(plan, target)
    target.md5_calls.clear()
    target.writes.clear()
    report = write_plan(plan, target)
    assert report.bytes_written == 0 and target.writes == [] and target.erases == []
    assert len(target.md5_calls) == len(plan.regions)
    assert all(r.action == "unchanged" and r.verified for r in report.regions)


def test_blank_fill_costs_nothing_but_fill_over_data_is_written():
    b = bundles.user_story()
    plan = plan_of(b)
    target = FakeTarget()
    report = write_plan(plan, target)
    cfg = next(r for r in report.regions if r.name == "boot_cfg")
    assert cfg.action == "unchanged" and cfg.bytes_written == 0
    target.flash[0x7000:0x7050] = b"\xE1\x01" + bytes(78)          # rBoot wrote its config
    report = write_plan(plan, target)
    cfg = next(r for r in report.regions if r.name == "boot_cfg")
    assert cfg.action == "written" and cfg.written_sectors == 1 and cfg.verified
    assert cfg.bytes_sent == 0 and target.erases == [(0x7000, 0x1000)]   # erased, no data sent
    assert bytes(target.flash[0x7000:0x8000]) == b"\xFF" * 0x1000
    assert [r.name for r in report.regions if r.action == "written"] == ["boot_cfg"]


def test_changed_sectors_only():
    plan = plan_of(bundles.era_2022())
    target = FakeTarget()
    write_plan(plan, target)
    app = plan.region("app")
    changed = bytearray(app.content())
    changed[0x5000] ^= 0xFF
    changed[0x21000] ^= 0xFF
    app.data = bytes(changed)
    target.writes.clear()
    report = write_plan(plan, target)
    result = next(r for r in report.regions if r.name == "app")
    assert result.changed_sectors == 2 and result.written_sectors == 2
    assert sorted(target.writes) == [(app.address + 0x5000, SECTOR),
                                     (app.address + 0x21000, SECTOR)]
    assert report.count("written") == 1 and bytes(target.flash) == plan.image(4 * MB)


def test_survey_asks_top_down():
    rng = random.Random(3)
    data = rng.randbytes(0x100000)                  # 1 MB region at 0x10000: 16 blocks
    target = FakeTarget()
    target.flash[0x10000:0x110000] = data
    changed = bytearray(data)
    changed[0x23456] ^= 1                            # one sector in one block
    state = survey_region(target, 0x10000, bytes(changed))
    assert state.changed == [0x23]
    # a big region: 16 blocks, 4 quarters of the changed block, 4 sectors of its quarter
    assert state.queries == 16 + 4 + 4
    blank = survey_region(FakeTarget(), 0x10000, bytes(changed))
    assert blank.queries == 16 and blank.blank_sectors == 256
    small = bytes(changed[:0x40000])                     # 256 KB: the whole region first
    state = survey_region(target, 0x10000, small)
    assert state.changed == [0x23] and state.queries == 1 + 4 + 4 + 4
    assert survey_region(FakeTarget(), 0x10000, small).queries == 1


def test_retry_resumes_at_first_bad_sector():
    plan = plan_of(bundles.era_2017())
    target = FakeTarget()
    calls = []

    def flaky(address: int, data: bytes) -> int | None:
        calls.append((address, len(data)))
        big = [c for c in calls if c[1] > 0x8000]
        return 0x3000 if len(big) == 1 and len(data) > 0x8000 else None

    target.fail_write = flaky
    report = write_plan(plan, target)
    assert bytes(target.flash) == plan.image(4 * MB)
    app = plan.region("app")
    first, second = [c for c in calls if c[0] >= app.address][:2]
    assert first == (app.address, len(app.content()))
    assert second[0] == app.address + 0x3000               # resumed after 3 good sectors
    result = next(r for r in report.regions if r.name == "app")
    assert result.retries == 1 and target.recoveries == 1 and result.verified


def test_three_failures_end_in_one_clear_error():
    plan = plan_of(bundles.era_2017())
    target = FakeTarget()
    target.fail_write = lambda address, data: 0
    with pytest.raises(WriteError) as err:
        write_plan(plan, target)
    assert "failed 3 times" in str(err.value) and "'boot'" in str(err.value)
    assert target.recoveries == 2


def test_verify_mismatch_is_repaired_once_then_fails():
    plan = plan_of(bundles.era_2017())
    target = FakeTarget()
    fired = []

    def corrupt_once(address: int, data: bytes) -> None:
        if not fired:
            fired.append(address)
            target.flash[address + 0x10] ^= 0xFF
    target.corrupt_after_write = corrupt_once
    report = write_plan(plan, target)
    assert report.verified and bytes(target.flash) == plan.image(4 * MB)

    target2 = FakeTarget()
    target2.corrupt_after_write = lambda address, data: target2.flash.__setitem__(address, 0)
    with pytest.raises(WriteError, match="verification failed"):
        write_plan(plan, target2)


def test_no_verify_skips_the_final_md5():
    plan = plan_of(bundles.era_2017())
    target = FakeTarget()
    report = write_plan(plan, target, WriteOptions(verify=False))
    assert len(target.md5_calls) == len(plan.regions)       # only the survey
    assert all(r.verified is None for r in report.regions if r.action == "written")


def test_erase_all_assumes_blank_and_asks_nothing_before_writing():
    plan = plan_of(bundles.era_2018())
    target = FakeTarget()
    target.flash[0x300000:0x301000] = b"\x00" * SECTOR      # not in the bundle: erased too
    report = write_plan(plan, target, WriteOptions(erase_all=True))
    assert target.erased_all and report.erase_all_seconds is not None
    assert bytes(target.flash) == plan.image(4 * MB)
    written = [r for r in report.regions if r.action == "written"]
    assert len(target.md5_calls) == len(plan.regions)         # one verify MD5 each
    assert written


def test_first_bad_sector():
    target = FakeTarget()
    data = bytes(range(256)) * 64                             # 4 sectors
    target.flash[0:0x2000] = data[:0x2000]
    assert first_bad_sector(target, 0, data) == 2
    assert first_bad_sector(target, 0, data[:0x2000]) == 2    # all match: the end


def test_verify_plan_reports_differing_sectors():
    plan = plan_of(bundles.era_2017())
    target = FakeTarget()
    write_plan(plan, target)
    target.flash[plan.region("fs").address + 0x2000] ^= 1
    checks = {c.name: c for c in verify_plan(plan, target)}
    assert not checks["fs"].ok and checks["fs"].differing == [2]
    assert all(c.ok for n, c in checks.items() if n != "fs")


def test_report_json_shape():
    plan = plan_of(bundles.user_story())
    report = write_plan(plan, FakeTarget())
    data = report.to_dict()
    assert data["written"] + data["unchanged"] == len(plan.regions)
    assert {"bytes_written", "bytes_sent", "kbit_s", "verified", "regions"} <= set(data)
