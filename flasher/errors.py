"""Errors the flasher reports to users, each with the exit code the CLI returns.

Every failure a user can cause or meet (bad bundle, missing port, no bootloader, bad write)
is one of these, so the CLI can print a single clear line instead of a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of `flasher` (documented in README.md)."""

    OK = 0
    INTERNAL = 1          # a bug: unexpected exception (run with --debug for the traceback)
    BAD_INPUT = 2         # bad command line, bundle, manifest, image or scenario; nothing touched
    PORT = 3              # the serial port cannot be opened (missing, busy, permission)
    CONNECT = 4           # port opened but no bootloader answered (a diagnosis is printed)
    WRITE = 5             # writing or verifying failed; the device was touched
    DEVICE_MISMATCH = 6   # wrong chip, flash too small, encryption state forbids the write
    PARTIAL = 7           # multi-board run: some boards failed
    INTERRUPTED = 130     # Ctrl-C


class FlasherError(Exception):
    """Base of all user-facing flasher errors. `str(err)` is the one line shown to the user."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class BundleError(FlasherError):
    """The bundle (zip, manifest, part data, partition table) is unusable. Nothing was touched."""

    exit_code = ExitCode.BAD_INPUT


class PlanError(BundleError):
    """The parts cannot be placed: overlap, misalignment, beyond flash, unknown partition."""


class PortError(FlasherError):
    """The serial port could not be opened."""

    exit_code = ExitCode.PORT


class UsageError(FlasherError):
    """The command line cannot be acted on (bad option value, ambiguous port). Nothing touched."""

    exit_code = ExitCode.BAD_INPUT


class ConnectError(FlasherError):
    """The port opened, but no ROM loader answered. Carries the diagnosis when one was made.

    `last_error` is esptool's own last error text (e.g. "No serial data received."), kept so a
    diagnosis layer can name the cause without re-running the connect.
    """

    exit_code = ExitCode.CONNECT

    def __init__(self, message: str, *, hint: str | None = None,
                 last_error: str | None = None, initial: bool = False,
                 diagnosis: object | None = None) -> None:
        super().__init__(message, hint=hint)
        self.last_error = last_error
        self.initial = initial          # the very first sync failed (nothing was touched)
        self.diagnosis = diagnosis      # flasher.diagnose.verdict.Diagnosis, once one was made
        self.expected_chip = "ESP32"    # esptool's CHIP_NAME of the chip the bundle is for


class WriteError(FlasherError):
    """A write or a verification failed after the device was touched."""

    exit_code = ExitCode.WRITE


class TransferError(WriteError):
    """One exchange with the board failed (timeout, error status, port gone). The writer
    retries these; when the retries are used up it reports a `WriteError`."""


class DeviceMismatchError(FlasherError):
    """The device is not what the bundle needs (chip, flash size, encryption)."""

    exit_code = ExitCode.DEVICE_MISMATCH
