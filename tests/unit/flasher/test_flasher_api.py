"""The flash/verify flows with a fake board: order of checks, device mismatches, header."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flasher import api
from flasher.bundle import builder as bundles
from flasher.bundle.image_header import describe_header
from flasher.errors import BundleError, DeviceMismatchError, ExitCode, PlanError
from tests.support.fakes import INFO, FakeDevice

MB = 1 << 20






@pytest.fixture
def board(monkeypatch):
    state = {"info": INFO, "devices": []}

    def open_(port, options=None):
        dev = FakeDevice(state["info"])
        state["devices"].append((port, dev))
        return dev
    monkeypatch.setattr(api.Device, "open", staticmethod(open_))
    return state


def write_zip(tmp_path, builder, name="fw.zip"):
    path = tmp_path / name
    path.write_bytes(builder.build())
    return path


def test_flash_writes_the_plan_and_resets(board, tmp_path):
    path = write_zip(tmp_path, bundles.era_2022())
    result = api.flash(path, "/dev/fake", api.FlashOptions(after="no-reset"))
    (_port, dev), = board["devices"]
    assert bytes(dev.flash) == result.plan.image(4 * MB)
    assert dev.finished == "no-reset" and result.report.verified
    assert result.to_dict()["ok"] is True


@pytest.mark.parametrize("make,fragment", [
    (lambda: bundles.bad_json_bundle(), "not valid JSON"),
    (lambda: bundles.zip_slip(), "unsafe path component"),
    (lambda: bundles._overlap().build(), "overlap"),
    (lambda: replace(bundles.era_2017(), platform="cc3200").build(),
     "bundle platform 'cc3200' is not supported"),
])
def test_bad_bundles_never_open_the_port(board, tmp_path, make, fragment):
    path = tmp_path / "bad.zip"
    path.write_bytes(make())
    with pytest.raises(BundleError, match=fragment) as err:
        api.flash(path, "/dev/fake")
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert board["devices"] == []


def test_encryption_on_refused_before_writing(board, tmp_path):
    board["info"] = replace(INFO, flash_encryption=True)
    path = write_zip(tmp_path, bundles.era_2022())          # parts marked encrypt: true
    with pytest.raises(DeviceMismatchError, match="--esp32-encryption-key-file") as err:
        api.flash(path, "/dev/fake")
    assert err.value.exit_code == ExitCode.DEVICE_MISMATCH
    (_port, dev), = board["devices"]
    assert dev.writes == [] and dev.erases == [] and dev.md5_calls == []


def espsecure_encrypt(data: bytes, address: int, key: bytes, conf: int) -> bytes:
    """espsecure's own CLI-level function, on files, as `espsecure encrypt-flash-data` runs it."""
    import io

    import espsecure
    out = io.BytesIO()
    espsecure.encrypt_flash_data(io.BytesIO(key), out, address, conf, False, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("scheme,key_len", [("none", 32), ("3/4", 24)])
def test_encryption_on_encrypts_marked_parts_with_the_mac_named_key(board, tmp_path, scheme,
                                                                    key_len):
    """As mos: '?' is the MAC (upper-case, no colons); the key length follows the coding
    scheme; the marked parts are written and verified as ciphertext, the others plainly."""
    key = bytes(range(7, 7 + key_len))
    (tmp_path / "240AC4000001.key").write_bytes(key)
    board["info"] = replace(INFO, flash_encryption=True, coding_scheme=scheme,
                            flash_crypt_config=0xF)
    path = write_zip(tmp_path, bundles.era_2022())
    options = api.FlashOptions(encryption_key_file=str(tmp_path / "?.key"))
    result = api.flash(path, "/dev/fake", options)
    (_port, dev), = board["devices"]
    with api.open_plan(path) as (_b, plain):
        plain_app = plain.region("app").content()
    for name in ("boot", "pt", "app"):
        reg = result.plan.region(name)
        assert reg.encrypted and bytes(dev.flash[reg.address:reg.end]) == reg.content()
    app = result.plan.region("app")
    assert app.content() == espsecure_encrypt(plain_app, app.address, key, 0xF)
    fs = result.plan.region("fs")
    assert not fs.encrypted and bytes(dev.flash[fs.address:fs.end]) == fs.content()
    assert result.report.verified
    assert any("boot, pt, app encrypted" in n for n in result.notes)


def test_encryption_key_of_the_wrong_length_is_one_line(board, tmp_path):
    (tmp_path / "k.bin").write_bytes(bytes(32))
    board["info"] = replace(INFO, flash_encryption=True, coding_scheme="3/4")
    path = write_zip(tmp_path, bundles.era_2022())
    options = api.FlashOptions(encryption_key_file=str(tmp_path / "k.bin"))
    with pytest.raises(api.UsageError, match="32 bytes; this device's coding scheme .3/4. "
                                             "needs 24"):
        api.flash(path, "/dev/fake", options)
    options = api.FlashOptions(encryption_key_file=str(tmp_path / "?.bin"))
    with pytest.raises(api.UsageError, match="240AC4000001.bin"):
        api.flash(path, "/dev/fake", options)
    assert all(dev.writes == [] for _p, dev in board["devices"])


def test_encryption_off_writes_encrypt_parts_plainly(board, tmp_path):
    path = write_zip(tmp_path, bundles.era_2022())
    result = api.flash(path, "/dev/fake")
    (_port, dev), = board["devices"]
    app = result.plan.region("app")
    assert app.encrypt and bytes(dev.flash[app.address:app.end]) == app.content()


def test_wrong_chip_and_small_flash(board, tmp_path):
    path = write_zip(tmp_path, bundles.era_2017())
    board["info"] = replace(INFO, chip="ESP32-S3")
    with pytest.raises(DeviceMismatchError, match="wrong chip: the bundle is for esp32"):
        api.flash(path, "/dev/fake")
    board["info"] = replace(INFO, flash_size=1 * MB)
    with pytest.raises(DeviceMismatchError, match="flash too small"):
        api.flash(path, "/dev/fake")
    board["info"] = replace(INFO, flash_size=None)
    with pytest.raises(DeviceMismatchError, match="pass --flash-size"):
        api.flash(path, "/dev/fake")
    result = api.flash(path, "/dev/fake", api.FlashOptions(flash_size="4MB"))
    assert result.report.verified


def test_boot_header_gets_the_detected_size(board, tmp_path):
    board["info"] = replace(INFO, flash_size=16 * MB)
    path = write_zip(tmp_path, bundles.era_2018())
    result = api.flash(path, "/dev/fake", api.FlashOptions(flash_freq="80m"))
    (_port, dev), = board["devices"]
    boot = result.plan.region("boot")
    header = describe_header(bytes(dev.flash[0x1000:0x1000 + 64]))
    assert header["size"] == "16MB" and header["freq"] == "80m"
    assert bytes(dev.flash[boot.address:boot.end]) == boot.content()
    kept = api.flash(path, "/dev/fake", api.FlashOptions(flash_size="keep"))
    assert describe_header(kept.plan.region("boot").content())["size"] == "4MB"


def test_secure_boot_leaves_the_header_alone(board, tmp_path):
    board["info"] = replace(INFO, flash_size=16 * MB, secure_boot=True)
    path = write_zip(tmp_path, bundles.era_2018())
    result = api.flash(path, "/dev/fake", api.FlashOptions(flash_mode="qio"))
    assert any("secure boot" in n for n in result.notes)
    assert describe_header(result.plan.region("boot").content())["mode"] == "dio"


def test_bad_header_option_is_usage_error(board, tmp_path):
    path = write_zip(tmp_path, bundles.era_2018())
    with pytest.raises(Exception) as err:
        api.flash(path, "/dev/fake", api.FlashOptions(flash_mode="fast"))
    assert err.value.exit_code == ExitCode.BAD_INPUT and board["devices"] == []


def test_verify_reports_and_raises(board, tmp_path):
    path = write_zip(tmp_path, bundles.era_2017())
    result = api.verify(path, "/dev/fake")
    assert not result.ok and "differs" in result.summary()
    with pytest.raises(Exception) as err:
        api.verify(path, "/dev/fake", raise_on_mismatch=True)
    assert err.value.exit_code == ExitCode.WRITE


def test_plan_errors_before_port_for_flash_size_option(board, tmp_path):
    path = write_zip(tmp_path, bundles.era_2017())
    with pytest.raises(PlanError, match="ends beyond the flash size"):
        api.flash(path, "/dev/fake", api.FlashOptions(flash_size="1MB"))
    assert board["devices"] == []
