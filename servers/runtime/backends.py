"""HTTP backends as the contract declares them: the base URL from BACKEND_<NAME>_HOST/_PORT/_TLS,
the credential file sent as a bearer, TLS verified against the system's trust (never turned
off: a backend declared `tls: true` whose certificate does not verify is a failed call)."""

from __future__ import annotations

import httpx2

from servers.runtime.contract import Backend

TIMEOUT_SECONDS = 10


def http_client(backend: Backend) -> httpx2.AsyncClient:
    """A client for one call; the credential is read now, so a rotated file is picked up."""
    headers = {}
    if backend.credential_file is not None:
        headers["Authorization"] = f"Bearer {backend.credential()}"
    return httpx2.AsyncClient(
        base_url=backend.base_url,
        headers=headers,
        verify=True,
        trust_env=False,  # no proxy or CA override from the environment
        follow_redirects=False,
        timeout=httpx2.Timeout(TIMEOUT_SECONDS),
    )
