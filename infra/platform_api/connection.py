"""How every platform resource reaches the API: an SDK client built from the resource's inputs.

Dynamic providers run inside the engine, in another process, from a pickled
provider object; so the provider holds no client and no key. Each call builds the
official SDK client from the `connection` input (base URL, workspace, the key as a
Pulumi secret) and turns the SDK's typed errors into one message that names the
object and carries the platform's own words, never a secret.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from infra.platform_api.sdk import anthropic

API_KEY_CONFIG = "agent-perimeter:platformApiKey"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class PlatformError(Exception):
    """An API call failed; the message names the object and is safe to print."""


def plain(value: Any) -> Any:
    """Engine values as ordinary data: secret wrappers removed (the engine keeps the flag)."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Connection:
    api_key: str
    base_url: str | None = None
    workspace_id: str | None = None

    @classmethod
    def of(cls, props: Mapping[str, Any]) -> Connection:
        raw = plain(props.get("connection")) or {}
        key = raw.get("api_key")
        if not key:
            raise PlatformError(
                f"no platform API key: set it with `pulumi config set --secret {API_KEY_CONFIG}`"
            )
        return cls(str(key), raw.get("base_url") or None, raw.get("workspace_id") or None)

    def client(self) -> anthropic.Anthropic:
        return _client(self)


@functools.lru_cache(maxsize=8)
def _client(connection: Connection) -> anthropic.Anthropic:
    """One client per connection for the provider process's life (one `up`): its calls share
    the SDK's connection pool instead of a TLS handshake and an SSL context each (20-40 ms
    before the first byte, on this machine, for every create and update)."""
    headers = (
        {"anthropic-workspace-id": connection.workspace_id} if connection.workspace_id else None
    )
    return anthropic.Anthropic(
        api_key=connection.api_key, base_url=connection.base_url, default_headers=headers
    )


def platform_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
    return f"HTTP {exc.status_code}"


@contextmanager
def calling(what: str, action: str, *, hidden: tuple[str, ...] = ()) -> Iterator[None]:
    """Run SDK calls for one object; re-raise failures as a PlatformError naming it.

    `hidden` values (tokens, the key) are cut out of any message the platform returns.
    """
    try:
        yield
    except anthropic.AuthenticationError as exc:
        fail(
            f"{what}: {action} refused, authentication failed ({platform_message(exc)}); "
            f"check {API_KEY_CONFIG} and platform.workspace_id",
            hidden,
        )
    except anthropic.PermissionDeniedError as exc:
        fail(f"{what}: {action} not permitted ({platform_message(exc)})", hidden)
    except anthropic.NotFoundError as exc:
        fail(f"{what}: not found on the platform ({platform_message(exc)})", hidden)
    except anthropic.RateLimitError as exc:
        fail(
            f"{what}: {action} rate limited after the SDK's retries ({platform_message(exc)}); "
            "run the update again later",
            hidden,
        )
    except anthropic.APIStatusError as exc:
        fail(f"{what}: {action} failed ({platform_message(exc)})", hidden)
    except anthropic.APIConnectionError as exc:
        fail(f"{what}: {action} could not reach the platform API ({exc})", hidden)


def fail(message: str, hidden: tuple[str, ...] = ()) -> NoReturn:
    for value in hidden:
        if value:
            message = message.replace(value, "<redacted>")
    raise PlatformError(message) from None
