"""Where the store lives and how its directories and files are made private: light (no
diskcache), because the journal opens its directory before the worker imports anything heavy
(docs/architecture.md, "The journal")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

DIRECTORY_MODE: Final = 0o700


def default_store_path() -> Path:
    """The per-user cache directory used when DISCORD_STORE_PATH is not set."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("discord-logging")) / "store"


def store_directory(store_path: Path | str | None) -> Path:
    """The store directory a setting names, or the per-user default."""
    return Path(store_path) if store_path else default_store_path()


def private_directory(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the owner only: mode 0700.
    An existing directory is left as it is: it may be shared on purpose."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    for created in missing:
        os.chmod(created, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` if missing with mode 0600 (exports hold message text)."""
    private_directory(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    return path
