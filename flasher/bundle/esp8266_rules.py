"""What mos does differently when it flashes an ESP8266 bundle (pure plan rules).

Why a module of its own: the ESP8266's SDK keeps its system parameters in the last 16 KB of
the flash, wherever the build thought the flash ended, and Mongoose OS's rBoot layout has a
second firmware slot the flasher must leave alone. mos (`cli/flash/esp/flasher/flash.go`):
- `adjustSysParamsLocation`: a part of type `sys_params` (pre-SDK-3.0 builds) is moved to
  flash_size - 16 KB of the *real* flash once its size is known;
- `sanityCheckImages`: unless a `sys_params3` part exists (SDK 3.0+ places the parameters
  itself, at the address the build chose), no other image may reach into that area;
- `addr1` (the second slot of `fw` and `fs`) is never written by flashing; OTA writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from flasher.errors import PlanError
from flasher.bundle.manifest import Part, parse_int
from flasher.formats.limits import U32_LIMIT, check_range


class Region(Protocol):
    """What these rules read and change of a plan region (`flasher.bundle.plan.Region`);
    a protocol, so the rules need not import the plan that calls them."""

    name: str
    part_type: str | None
    address: int
    why: str
    explain: str | None

    @property
    def end(self) -> int: ...

SYS_PARAMS_TYPE = "sys_params"      # mos flash.go sysParamsPartType: moved to the flash end
SYS_PARAMS3_TYPE = "sys_params3"    # mos flash.go sysParams3PartType: left where it is
SYS_PARAMS_AREA = 4 * 0x1000        # mos flash.go sysParamsAreaSize


def apply_part_rules(part: Part, reg: Region, flash_size: int | None,
                     warnings: list[str]) -> None:
    """Move a `sys_params` region to the flash end; explain `addr1` on slot parts."""
    if part.type == SYS_PARAMS_TYPE:
        if flash_size is None:
            warnings.append(f"part {part.name!r} (type sys_params) goes to the last "
                            f"{SYS_PARAMS_AREA // 1024} KB of the device's flash once its "
                            "size is known")
        elif reg.address != flash_size - SYS_PARAMS_AREA:
            new = flash_size - SYS_PARAMS_AREA
            reg.why += (f"; moved from {reg.address:#x} to {new:#x}: type sys_params belongs "
                        "in the last 16 KB of the flash (as mos does)")
            reg.address = new
    addr1 = part.extra.get("addr1")
    if addr1 is not None:
        what = f"part {part.name!r} key 'addr1'"
        second = check_range(parse_int(addr1, what=what), 0, U32_LIMIT - 1, what=what,
                             error=PlanError)
        reg.explain = (f"slot 0 at {reg.address:#x}; addr1 {second:#x} is the second slot, "
                       "written by OTA updates, not by flashing (as mos)")


def check_sys_params_area(regions: Sequence[Region], flash_size: int | None) -> None:
    """Without a `sys_params3` part only the `sys_params` part may use the last 16 KB."""
    if flash_size is None or any(r.part_type == SYS_PARAMS3_TYPE for r in regions):
        return
    begin = flash_size - SYS_PARAMS_AREA
    for reg in sorted(regions, key=lambda r: r.address):
        if reg.address == begin and reg.part_type == SYS_PARAMS_TYPE:
            continue
        if reg.end > begin:
            raise PlanError(f"part {reg.name!r} ({reg.address:#x}-{reg.end:#x}) overlaps the "
                            f"ESP8266 system params area ({begin:#x}-{flash_size:#x})")
