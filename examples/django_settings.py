"""A Django settings fragment: errors to Discord, the way ``mail_admins`` sends them by email.

Copy ``LOGGING`` into your project's settings.py. Server errors (the 500s Django logs on
``django.request``) and ERROR records of your own code (``shop`` here) become Discord alerts;
everything still goes to the console. Webhook URLs come from the environment
(DISCORD_WEBHOOK_ERRORS, DISCORD_WEBHOOK_GENERAL, ...), so no secret is in settings.

``django_app.py`` runs a one-file app with this configuration::

    DISCORD_WEBHOOK_ERRORS=https://discord.com/api/webhooks/<id>/<token> \\
    uv run python examples/django_app.py

No webhook at hand? ``discord-logging demo`` plays a scenario against a local fake Discord.
"""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "discord": {
            "class": "discord_logging.DiscordHandler",
            "level": "ERROR",
            "app_name": "shop",
        },
    },
    "loggers": {
        # Unhandled exceptions in views: "Internal Server Error: /path", with the traceback.
        "django.request": {"handlers": ["discord"], "level": "ERROR", "propagate": True},
        # Your application's own loggers.
        "shop": {"handlers": ["console", "discord"], "level": "INFO", "propagate": False},
    },
}
