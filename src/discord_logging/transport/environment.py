"""What the HTTP client takes from the process environment, and what ``check`` verifies of it.

The client keeps httpx's ``trust_env=True``, as curl and requests do: ``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` choose an outbound proxy, and ``SSL_CERT_FILE``
(or, without it, ``SSL_CERT_DIR``) the CA certificates that check Discord's. Networks that
allow no direct route out need the first; TLS-inspecting proxies need the second. httpx reads
them when it builds its client, on the worker thread, where a missing certificate file would
stop delivery: :func:`require_certificates` says so at start-up instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..errors import ConfigurationError

_CERT_FIX = "point it at a PEM file of CA certificates, or unset it to use certifi's"


def certificate_problem(
    environ: Mapping[str, str] | None = None, *, load: bool = False
) -> str | None:
    """Why the CA certificates the environment names cannot be used, or None.

    Cheap by default (the file can be opened; the directory exists); ``load`` also loads the
    file as the client will (about 10 ms), which catches a file that holds no certificate."""
    env = os.environ if environ is None else environ
    cafile = env.get("SSL_CERT_FILE", "")
    if cafile:  # httpx prefers it to SSL_CERT_DIR
        try:
            with open(cafile, "rb"):
                pass
        except OSError as exc:
            return (
                f"SSL_CERT_FILE names {cafile}, which cannot be read ({exc.strerror or exc}); "
                f"every HTTPS request would fail. Fix: {_CERT_FIX}"
            )
        if load:
            import ssl

            try:
                ssl.create_default_context(cafile=cafile)
            except ssl.SSLError as exc:
                return (
                    f"SSL_CERT_FILE names {cafile}, which holds no CA certificate that can be "
                    f"loaded ({exc.reason or exc}). Fix: {_CERT_FIX}"
                )
        return None
    capath = env.get("SSL_CERT_DIR", "")
    if capath and not os.path.isdir(capath):
        return (
            f"SSL_CERT_DIR names {capath}, which is not a directory; no certificate of "
            "Discord's could be verified. Fix: point it at a directory of hashed CA "
            "certificates, or unset it to use certifi's"
        )
    return None


def require_certificates() -> None:
    """Raise :class:`ConfigurationError` at start-up when the certificates the environment
    names are missing (the cheap check: no file is parsed on the caller's thread)."""
    problem = certificate_problem()
    if problem:
        raise ConfigurationError(problem)
