"""What :mod:`discord_logging.settings` is built from, read on the caller's thread when a
handler is created: where values come from besides keywords (``sources``: the
``DISCORD_WEBHOOK_<TYPE>`` variables, secrets in ``*_FILE`` files, the environment over
``.env``), and the options given per alert type (``alert_options``: silent, link buttons,
forum channels and tags, incident updates)."""
