"""What ``discord-logging check`` catches before the application meets it: misspelt ``DISCORD_*``
variables (which the settings ignore, so a typo would silently send nothing), a store that
cannot be created and written (which would keep dead letters only in memory), and what the
handler needs of the machine: the redis package for ``DISCORD_REDIS_URL``, readable CA
certificates where ``SSL_CERT_FILE`` points."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Secret

from ..config.variables import (  # re-exported: what check tells
    DOTENV,
    ENV_PREFIX,
    FILE_SUFFIX,
    IGNORE_VARIABLE,
    OTHER_TOOLS,
    WEBHOOK_PREFIX,
    builtin_webhook_variables,
    configured_variables,
    ignored_patterns,
    known_variables,
    variable_problems,
)

__all__ = [
    "DOTENV",
    "ENV_PREFIX",
    "FILE_SUFFIX",
    "IGNORE_VARIABLE",
    "OTHER_TOOLS",
    "WEBHOOK_PREFIX",
    "builtin_webhook_variables",
    "configured_variables",
    "ignored_patterns",
    "known_variables",
    "machine_problems",
    "redis_url_refused",
    "store_problem",
    "variable_problems",
]


def store_problem(path: Path) -> str | None:
    """Try what the handler will do with the store: create the directory (parents 0700) and
    write and delete a file in it. None when that worked, else what failed and the fix.
    Directories it created are removed again: a check leaves no trace."""
    from ..store._paths import UnsafeStoreDirectory, private_directory

    probe = path / f".discord-logging-check-{os.getpid()}"
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(20, "it is not a directory", str(path))
        private_directory(path)
        probe.write_bytes(b"check")
        probe.unlink()
    except UnsafeStoreDirectory as exc:  # names the path and the fix itself
        return f"{exc} Dead letters would be kept in memory only and lost at exit."
    except OSError as exc:
        why = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        return (
            f"the store at {path} cannot be created and written: {why}{where}. Dead letters "
            "would be kept in memory only and lost at exit. Set DISCORD_STORE_PATH (or "
            "store_path=) to a directory this user can create and write."
        )
    finally:
        for directory in created:  # innermost first; only empty ones we made
            with contextlib.suppress(OSError):
                directory.rmdir()
    return None


def machine_problems(redis_url: Secret | None) -> list[str]:
    """What the handler would refuse at start-up, or fail on, about this machine: redis-py
    missing while ``DISCORD_REDIS_URL`` is set, or refusing the URL; CA certificates named by
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` that cannot be read or hold none (loaded as the
    client will)."""
    from ..coordination import require_redis_client
    from ..errors import ConfigurationError
    from ..transport.environment import certificate_problem

    problems = []
    try:
        require_redis_client(redis_url)
    except ConfigurationError as exc:
        problems.append(str(exc))
    else:
        trouble = redis_url_refused(redis_url.get_secret_value()) if redis_url else None
        if trouble:
            problems.append(trouble)
    certificates = certificate_problem(load=True)
    if certificates:
        problems.append(certificates)
    return problems


def redis_url_refused(url: str) -> str | None:
    """What redis-py says of ``url`` when it reads it (a query option it cannot parse, say),
    every piece of the URL hidden; None when it reads it. The settings catch the rest."""
    from redis import connection

    from ..redaction import hide_parts

    parse: Callable[[str], object] = connection.parse_url  # redis-py has no annotations here
    try:
        parse(url)
    except ValueError as exc:
        return (
            f"DISCORD_REDIS_URL cannot be read by redis-py ({hide_parts(str(exc), url)}). "
            "Fix: write it as redis://[:password@]host:port/db[?option=value], with values "
            "redis-py accepts"
        )
    return None
