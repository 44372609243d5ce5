"""A one-file Django app whose 500s become Discord alerts (LOGGING from django_settings.py).

Without arguments it requests the failing view once through Django's test client, so it needs
no server: the view logs an ERROR on the ``shop`` logger and then raises; Django answers 500
and logs "Internal Server Error: /checkout/" on ``django.request``. Both reach Discord. A
record with ``extra={"alert_type": "security"}`` goes to DISCORD_WEBHOOK_SECURITY.

Run it::

    DISCORD_WEBHOOK_ERRORS=https://discord.com/api/webhooks/<id>/<token> \\
    DISCORD_WEBHOOK_SECURITY=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/django_app.py            # or: ... django_app.py runserver

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

import logging
import sys

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django_settings import LOGGING

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-not-secret",
    ALLOWED_HOSTS=["testserver", "localhost", "127.0.0.1"],
    ROOT_URLCONF=__name__,
    LOGGING=LOGGING,
)
django.setup()

log = logging.getLogger("shop.checkout")


def checkout(request: HttpRequest) -> HttpResponse:
    if request.GET.get("coupon") == "STAFF100":
        log.error(
            "Staff coupon used by a customer account on cart %s",
            request.GET.get("cart", "?"),
            extra={"alert_type": "security"},
        )
    log.error("Payment provider timed out for cart %s", request.GET.get("cart", "?"))
    raise RuntimeError("payment provider timed out")


urlpatterns = [path("checkout/", checkout)]

if __name__ == "__main__":
    if len(sys.argv) > 1:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    else:
        from django.test import Client

        query = {"cart": "c-8812", "coupon": "STAFF100"}
        response = Client(raise_request_exception=False).get("/checkout/", query)
        print(f"GET /checkout/ -> {response.status_code}")
