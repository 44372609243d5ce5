"""Stage 1, capture: a log record (or a ``send()`` call) becomes a routed, plain-data
:class:`~discord_logging.notification.Notification`.

Runs on the caller's thread, so it is pure and cheap: no I/O, no templates, no locks shared
with delivery. ``snapshot`` copies what a record says once (message, traceback, extras);
``routing`` picks its alert type and the webhook that carries it.
"""
