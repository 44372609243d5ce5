"""OpenTelemetry: each alert names its trace and span, and links to the trace.

Nothing to add to the logging set-up: when the application uses OpenTelemetry, the handler
reads the span active where a record is logged and shows its ids as the ``Trace`` and
``Span`` fields. With DISCORD_TRACE_URL_TEMPLATE set, the trace id is a link to your tracing
UI (Jaeger, Tempo, Honeycomb, ...); ``{trace_id}`` and ``{span_id}`` are filled in. Records
that opentelemetry-instrumentation-logging already stamped (``otelTraceID``/``otelSpanID``,
with ``LoggingInstrumentor().instrument(inject_trace_context=True)``) use those ids.

Routing is unchanged: ``extra={"alert_type": "security"}`` goes to the security webhook.

Run it::

    DISCORD_WEBHOOK_GENERAL=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_TRACE_URL_TEMPLATE='https://jaeger.example.com/trace/{trace_id}' \\
    uv run python examples/opentelemetry_app.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from discord_logging import DiscordHandler

# Your exporter goes here (tracer_provider.add_span_processor(BatchSpanProcessor(...))).
trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": "checkout"})))
tracer = trace.get_tracer("checkout")

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-8s %(name)s: %(message)s")
logging.getLogger().addHandler(DiscordHandler(level=logging.WARNING, app_name="checkout"))
log = logging.getLogger("checkout")


def checkout(order: str) -> None:
    with tracer.start_as_current_span("checkout", attributes={"order": order}):
        with tracer.start_as_current_span("charge-card"):
            log.error("Payment provider timed out for order %s", order)
        log.warning(
            "Card of order %s used from a new country", order, extra={"alert_type": "security"}
        )


if __name__ == "__main__":
    checkout("A-1001")
    log.error("Nightly report failed")  # outside any span: no Trace field
