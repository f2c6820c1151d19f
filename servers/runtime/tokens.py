"""The platform's bearer tokens, as the kubelet mounts them: one file per accepted token.

During a rotation the Secret holds `token` and `previous-token`; afterwards only `token`. The
kubelet swaps the mounted directory atomically (its `..data` link), so the files are re-read
whenever what they point at changes: a rotation needs no restart, and a token dropped from the
Secret stops working within one request of the kubelet's update.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from pathlib import Path

from mcp.server.auth.provider import AccessToken

log = logging.getLogger(__name__)

CLIENT_ID = "platform"


class MountedTokens:
    """The SDK's `TokenVerifier`: a request is accepted when its bearer equals a mounted token."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._tokens: tuple[bytes, ...] = ()

    def _state(self) -> tuple[tuple[str, int, int], ...]:
        entries = []
        for entry in os.scandir(self._directory):
            if entry.name.startswith("."):
                continue  # the kubelet's ..data and timestamped directories
            try:
                stat = os.stat(entry.path)  # follows the kubelet's links
            except FileNotFoundError:
                continue
            entries.append((entry.name, stat.st_ino, stat.st_mtime_ns))
        return tuple(sorted(entries))

    def tokens(self) -> tuple[bytes, ...]:
        with self._lock:
            state = self._state()
            if state != self._seen:
                tokens = []
                for name, _, _ in state:
                    try:
                        value = (self._directory / name).read_bytes().strip()
                    except OSError:
                        continue
                    if value:
                        tokens.append(value)
                self._seen, self._tokens = state, tuple(tokens)
                log.info("bearer tokens loaded: %d accepted (%s)", len(tokens), self._directory)
            return self._tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        presented = token.strip().encode()
        accepted = False
        for known in self.tokens():
            # Every token is compared, so the time taken does not say which one matched.
            accepted |= hmac.compare_digest(presented, known)
        if not accepted:
            return None
        return AccessToken(token="", client_id=CLIENT_ID, scopes=[])
