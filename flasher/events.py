"""Progress events of long steps: what the flasher is doing right now, as data.

Why: connecting and diagnosing can take 10-25 s (7 sync attempts with resets, passive
listening at two bauds, waiting for a person to press EN); the user story's complaint was a
tool that says too little while it tries. The logic (`flasher.device.connect`,
`flasher.diagnose.probe`, `flasher.write.writer`) reports each step to a `Listener` it was
given — a plain callable — and never prints; the CLI turns events into a rich status line,
plain lines on a pipe, JSON lines with `--json`, or nothing with `--quiet` (`flasher.ui`).

Stdlib only (the layer under everything else).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One step. `step` is a stable machine name; `message` is the sentence a person reads.

    Steps: open, connect (one sync attempt), connected, stub, baud, listen, sync, reset,
    ask, check, survey, verify, finish, monitor. `fields` carry the numbers (port, baud,
    attempt, of, reset, ...).
    """

    step: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.step, "message": self.message, **self.fields}


Listener = Callable[[Event], None]


def emit(listener: Listener | None, step: str, message: str, **fields: Any) -> None:
    """Send one event to `listener` (nothing when there is none)."""
    if listener is not None:
        listener(Event(step, message, fields))


class Collector:
    """A Listener that keeps the events (tests, and the API's callers)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def steps(self) -> list[str]:
        return [e.step for e in self.events]

    def messages(self, step: str | None = None) -> list[str]:
        return [e.message for e in self.events if step is None or e.step == step]
