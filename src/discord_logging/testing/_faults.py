"""Injected faults: answers forced onto the next N matching requests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fault:
    """An injected answer for the next ``remaining`` matching requests."""

    remaining: int
    webhook_id: str | None
    status: int = 503
    retry_after: float = 0.0


def take(faults: list[Fault], webhook_id: str) -> Fault | None:
    """Consume one use of the first fault matching ``webhook_id`` (None matches every webhook)."""
    for fault in faults:
        if fault.webhook_id is None or fault.webhook_id == webhook_id:
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None
