"""flasher.bundle.archive / flasher.bundle.manifest: safe zip opening, manifest parsing, part reading."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from flasher.bundle.archive import Bundle, Limits, check_member_name
from flasher.errors import BundleError, ExitCode
from flasher.bundle.manifest import parse_int, parse_manifest, parse_part
from flasher.bundle import builder as B


def open_bytes(data: bytes, **kw) -> Bundle:
    return Bundle.open(io.BytesIO(data), **kw)


# ---- container safety ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil.bin", "a/../../evil", "/etc/passwd", "C:/x.bin",
                                  "..\\evil.bin", "a\\b.bin", "a//b", "./x", "x\x00y"])
def test_unsafe_member_names_are_refused(name):
    with pytest.raises(BundleError) as err:
        check_member_name(name)
    assert "bundle member" in str(err.value)


@pytest.mark.parametrize("name", ["manifest.json", "app-1.0/app.bin", "dir/", "a.b-c_d/e.f"])
def test_safe_member_names_pass(name):
    check_member_name(name)   # no exception


@pytest.mark.parametrize("evil", ["../evil.bin", "/abs.bin", "..\\win.bin"])
def test_zip_slip_bundle_rejected_on_open(evil):
    with pytest.raises(BundleError) as err:
        open_bytes(B.zip_slip(evil))
    assert str(err.value).startswith(f"bundle member {evil!r}: ")
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_symlink_member_rejected():
    with pytest.raises(BundleError, match="symlinks are not allowed"):
        open_bytes(B.symlink_bundle())


def test_not_a_zip_and_missing_file(tmp_path):
    with pytest.raises(BundleError, match="not a valid zip"):
        open_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(BundleError, match="no such file"):
        Bundle.open(tmp_path / "nope.zip")
    with pytest.raises(BundleError, match="folder"):
        Bundle.open(tmp_path)


def test_truncated_zip_rejected():
    data = B.era_2017().build()
    with pytest.raises(BundleError):
        open_bytes(data[: len(data) // 2])


def test_member_over_declared_limit_rejected_before_reading():
    limits = Limits(max_member=64 * 1024, max_total=1024 * 1024)
    with pytest.raises(BundleError, match="exceeds the 65536 byte limit"):
        open_bytes(B.bomb(256 * 1024), limits=limits)


def test_total_limit_counts_all_members():
    members = [("manifest.json", B.minimal_manifest())]
    members += [(f"f{i}.bin", b"\x00" * 40_000) for i in range(5)]
    with pytest.raises(BundleError, match="uncompressed exceeds"):
        open_bytes(B.zip_with_members(members), limits=Limits(max_member=50_000, max_total=150_000))


def test_lying_header_cannot_smuggle_a_bomb():
    """Header claims 10 bytes, the deflate stream holds 256 KB: reading stops and fails."""
    data = B.lie_about_size(B.bomb(256 * 1024), "boot.bin", 10)
    bundle = open_bytes(data, limits=Limits(max_member=64 * 1024))
    with pytest.raises(BundleError, match="corrupt.*CRC"):
        bundle.read_file("boot.bin")
    assert bundle._total_read < 1024   # manifest + the 10 claimed bytes, not the 256 KB stream


def test_default_limits_reject_a_real_zip_bomb():
    data = B.bomb(65 * 1024 * 1024)
    assert len(data) < 200 * 1024            # it really is a bomb
    with pytest.raises(BundleError, match="limit"):
        open_bytes(data)


def test_encrypted_member_rejected():
    data = bytearray(B.zip_with_members([("manifest.json", B.minimal_manifest())]))
    # set the "encrypted" general-purpose flag bit in the local and central headers
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(sig)
        data[pos + off] |= 1
    with pytest.raises(BundleError, match="encrypted"):
        open_bytes(bytes(data))


def test_duplicate_member_rejected():
    with pytest.warns(UserWarning):
        data = B.zip_with_members([("manifest.json", B.minimal_manifest()),
                                   ("manifest.json", B.minimal_manifest())])
    with pytest.raises(BundleError, match="twice"):
        open_bytes(data)


# ---- manifest location -----------------------------------------------------------------------

def test_manifest_at_root_and_in_one_folder():
    assert open_bytes(B.era_2022().build()).root == ""
    assert open_bytes(B.era_2017().build()).root == "app2017-esp32-1.0/"


def test_manifest_missing_or_too_deep_or_ambiguous():
    with pytest.raises(BundleError, match="no manifest.json"):
        open_bytes(B.zip_with_members([("a/b/manifest.json", B.minimal_manifest())]))
    with pytest.raises(BundleError, match="several manifests"):
        open_bytes(B.zip_with_members([("a/manifest.json", B.minimal_manifest()),
                                       ("b/manifest.json", B.minimal_manifest())]))


def test_bad_json_manifest():
    with pytest.raises(BundleError, match="not valid JSON.*line 1"):
        open_bytes(B.bad_json_bundle())


@pytest.mark.parametrize("raw, match", [
    (b"[]", "JSON object"),
    (b'{"name": "x"}', "'parts' is missing"),
    (b'{"parts": {"a": 5}}', "part 'a': expected an object"),
    (b'{"parts": {"a": {"addr": 1, "fill": 1, "size": 4}, "a": {}}}', "appears twice"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_manifest_structure_errors(raw, match):
    with pytest.raises(BundleError, match=match):
        parse_manifest(raw)


# ---- part values -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(4096, 4096), ("0x1000", 4096), ("4096", 4096),
                                             (" 0X10 ", 16), ("0010", 10), (4096.0, 4096),
                                             ("0o10", 8)])
def test_parse_int_spellings(value, expected):
    assert parse_int(value, what="x") == expected


@pytest.mark.parametrize("value", ["zz", "", True, None, 1.5, [1], "0x"])
def test_parse_int_rejects(value):
    with pytest.raises(BundleError, match="^x: "):
        parse_int(value, what="x")


@pytest.mark.parametrize("obj, match", [
    ({"addr": "zz", "src": "a"}, "part 'p' key 'addr'.*'zz'"),
    ({"addr": 0, "fill": 300, "size": 4}, "part 'p' key 'fill'.*300"),
    ({"addr": 0, "fill": -1, "size": 4}, "part 'p' key 'fill'"),
    ({"addr": 0, "src": "a", "size": -5}, "part 'p' key 'size'.*negative"),
    ({"addr": 0, "fill": 255}, "part 'p' key 'size'.*needs a size"),
    ({"addr": 0, "fill": 255, "size": 0}, "part 'p' key 'size'"),
    ({"addr": 0}, "part 'p': has neither 'src' nor 'fill'"),
    ({"addr": 0, "src": "a", "cs_sha1": "abc"}, "part 'p' key 'cs_sha1'.*40 hex"),
    ({"addr": 0, "src": "a", "cs_sha256": "g" * 64}, "part 'p' key 'cs_sha256'"),
    ({"addr": 0, "src": "a", "encrypt": "yes"}, "part 'p' key 'encrypt'"),
    ({"addr": 0, "src": "a", "flash": 2}, "part 'p' key 'flash'"),
    ({"addr": 2 ** 32, "src": "a"}, "part 'p' key 'addr'.*outside"),
    ({"addr": 0, "src": ""}, "part 'p' key 'src'"),
    ({"addr": 0, "src": "a", "ptn": ["x"]}, "part 'p' key 'ptn'"),
])
def test_bad_part_values_name_part_and_key(obj, match):
    with pytest.raises(BundleError, match=match):
        parse_part("p", obj)


def test_part_fields_and_unknown_keys_kept():
    part = parse_part("fs", {"src": "fs.img", "addr": "0x190000", "ptn": "fs_0", "type": "fs",
                             "size": "65536", "cs_sha1": "A" * 40, "encrypt": "false",
                             "update": True, "fs_size": 262144, "future": {"k": [1]}})
    assert (part.addr, part.size, part.ptn, part.type) == (0x190000, 65536, "fs_0", "fs")
    assert part.cs_sha1 == "a" * 40                   # normalised to lower case
    assert part.encrypt is False and part.update is True and part.flash is True
    assert part.extra == {"fs_size": 262144, "future": {"k": [1]}}
    assert json.loads(json.dumps(part.to_dict()))["future"] == {"k": [1]}


def test_fill_with_ptn_may_omit_size_and_flash_false_needs_no_data():
    assert parse_part("nvs", {"ptn": "nvs", "fill": 255}).is_fill
    assert parse_part("doc", {"flash": False}).flash is False


def test_manifest_typed_fields_and_extra():
    b = open_bytes(B.era_2022().build())
    man = b.manifest
    assert (man.name, man.platform, man.version) == ("app2023", "esp32", "2.3.0")
    assert man.extra == {"arch": "esp32", "description": "demo", "sig0": "QUJD"}
    assert [p.name for p in man.parts] == ["boot", "pt", "otadata", "nvs", "app", "fs"]
    assert man.part("app").extra == {"x_build_host": "ci-7"}
    assert man.part("app").encrypt is True
    with pytest.raises(BundleError, match="no part 'zz'.*boot"):
        man.part("zz")
    json.dumps(b.to_dict())


# ---- reading part data -----------------------------------------------------------------------

def test_read_part_verifies_sha1_and_sha256():
    for era in (B.era_2018, B.era_2022):
        b = open_bytes(era().build())
        data = b.read_part(b.manifest.part("app"))
        assert data[0] == 0xE9
    builder = B.era_2018()
    builder.files["app.bin"] = builder.files["app.bin"][:-1] + b"\x00"
    with pytest.raises(BundleError, match="part 'app': SHA-1 mismatch"):
        b = open_bytes(builder.build())
        b.read_part(b.manifest.part("app"))
    builder = B.era_2022()
    builder.files["fs.bin"] = b"tampered" + builder.files["fs.bin"][8:]
    b = open_bytes(builder.build())
    with pytest.raises(BundleError, match="part 'fs': SHA-256 mismatch"):
        b.read_part(b.manifest.part("fs"))


def test_read_part_checks_declared_size():
    builder = B.BundleBuilder()
    builder.add_part("app", data=b"\xE9" * 100, checksums=(), addr=0x10000, size=200)
    b = open_bytes(builder.build())
    with pytest.raises(BundleError, match="part 'app' key 'size'.*200.*100"):
        b.read_part(b.manifest.part("app"))
    builder.parts["app"]["size"] = 0                  # 0 = not declared: accepted
    b = open_bytes(builder.build())
    assert len(b.read_part(b.manifest.part("app"))) == 100


def test_read_fill_part_and_size_override():
    b = open_bytes(B.user_story().build())
    cfg = b.manifest.part("boot_cfg")
    assert b.read_part(cfg) == b"\xFF" * 4096
    assert b.read_part(cfg, size=8192) == b"\xFF" * 8192


def test_missing_src_file():
    builder = B.BundleBuilder()
    builder.add_part("app", src="gone.bin", addr=0x10000)
    b = open_bytes(builder.build())
    assert not b.has_src(b.manifest.part("app"))
    with pytest.raises(BundleError, match="part 'app'.*'gone.bin' is not in the bundle"):
        b.read_part(b.manifest.part("app"))


def test_src_found_by_base_name_like_mos():
    data = B.zip_with_members([("fw/manifest.json", B.minimal_manifest()),
                               ("fw/bin/boot.bin", b"\xE9abc")])
    b = open_bytes(data)
    assert b.read_part(b.manifest.part("boot")) == b"\xE9abc"


def test_unsafe_src_in_manifest_is_refused():
    builder = B.BundleBuilder()
    builder.add_part("app", src="../../etc/passwd", addr=0x10000)
    b = open_bytes(builder.build())
    with pytest.raises(BundleError, match="unsafe"):
        b.read_part(b.manifest.part("app"))


def test_file_on_disk_and_context_manager(tmp_path):
    path = tmp_path / "fw.zip"
    path.write_bytes(B.era_2017().build())
    with Bundle.open(path) as b:
        assert b.source == str(path)
        assert "app2017-esp32-1.0/app.bin" in b.members()


def test_corrupt_member_data_gives_bundle_error():
    data = bytearray(B.era_2017().build())
    idx = data.find(b"app2017-esp32-1.0/fs.bin")      # local header of fs.bin
    data[idx + 200: idx + 260] = b"\x00" * 60          # damage its deflate stream
    b = open_bytes(bytes(data))
    with pytest.raises(BundleError, match="part 'fs': .* is corrupt"):
        b.read_part(b.manifest.part("fs"))


def test_zipfile_module_is_what_we_think():
    """Guard: symlink detection relies on the Unix mode in external_attr's high 16 bits."""
    info = zipfile.ZipInfo("x")
    info.external_attr = 0o120777 << 16
    assert (info.external_attr >> 16) & 0o170000 == 0o120000


def test_total_read_limit_counts_each_member_once():
    """Many plans from one open bundle (multi-board runs) must not exhaust the budget."""
    builder = B.era_2017()
    b = open_bytes(builder.build(), limits=Limits(max_total=512 * 1024))
    app = b.manifest.part("app")
    for _ in range(20):                               # 20 x 96 KB > 512 KB if re-reads counted
        assert b.read_part(app) == builder.files["app.bin"]
    assert b._total_read < 512 * 1024



def test_a_second_plan_reads_and_checks_each_part_once(tmp_path, monkeypatch):
    """The device plan after the offline plan: the zip member is read and its digest checked
    once per bundle, not once per plan."""
    from flasher.bundle import archive
    from flasher.bundle.plan import PlanOptions, build_plan

    path = tmp_path / "fw.zip"
    path.write_bytes(B.user_story().build())
    reads: list[str] = []
    real = archive.Bundle.read_file
    monkeypatch.setattr(archive.Bundle, "read_file",
                        lambda self, name: reads.append(name) or real(self, name))
    with archive.Bundle.open(path) as bundle:
        first = build_plan(bundle, PlanOptions())
        count = len(reads)
        second = build_plan(bundle, PlanOptions(flash_size=4 << 20))
    assert count > 0 and len(reads) == count
    assert [r.content() for r in first.regions if r.data is not None] == \
        [r.content() for r in second.regions if r.data is not None]
