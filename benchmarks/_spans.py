"""An OpenTelemetry span around a measurement, for the benchmarks that log inside one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def active_span(wanted: bool = True) -> Iterator[None]:
    """An active span of the SDK's tracer while the block runs, when ``wanted``."""
    if not wanted:
        yield
        return
    from opentelemetry.sdk.trace import TracerProvider

    with TracerProvider().get_tracer("bench").start_as_current_span("bench"):
        yield
