"""What a scenario says is wrong with a board: its serial link's faults and its triggered faults.

Why a module of its own, in the faults layer: the fault injector (faults/injector.py) acts on
these and the scenario loader (host/scenario.py) builds them from YAML; keeping the data types
here lets the injector depend on nothing above it. Field meanings are documented for users
in scenarios/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinkSpec:
    dead_rx: bool = False          # nothing the host sends reaches the chip
    dead_tx: bool = False          # nothing the chip sends reaches the host
    swapped: bool = False          # TX<->TX and RX<->RX: neither direction works
    noise: float = 0.0             # noise bursts per second: junk bytes on an idle line,
                                   # a flipped bit in a byte on the wire otherwise
    flip: float = 0.0              # probability per byte of one flipped bit
    drop: float = 0.0              # probability per byte of the byte being lost
    latency_ms: float = 0.0        # extra delay each way (USB adapter / network)
    baud_skew: float = 0.0         # chip clock error, e.g. 0.08 = 8 % fast
    seed: int = 1


@dataclass(frozen=True)
class FaultSpec:
    trigger: str
    value: float | str
    action: str
    nth: int = 1
    count: int = 1                 # how many times the action fires (program failures)
    seconds: float = 0.0           # stall length, power-loss duration (0: stays off)
    cause: str = "watchdog"        # reset cause for `reset`
    silent: bool = False           # program-failure: bits silently not programmed
    text: str = "chatter: I (12345) app: still here, doing busy work\r\n"
    rate_s: float = 0.05
