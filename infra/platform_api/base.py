"""What every platform resource shares: diff over declared fields, read merging, adoption.

A subclass names the inputs it compares (`compared`), those whose change needs a
new object (`replace_on`), and implements the SDK calls. Outputs always carry the
inputs too, so a refresh that finds drift shows up as a diff on the next `up`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import DiffResult, ReadResult, ResourceProvider

from infra.platform_api.connection import Connection, calling, fail, plain
from infra.platform_api.sdk import anthropic
from infra.pure.platform_ids import id_problem

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # pulumi.runtime.rpc.UNKNOWN during preview


class PlatformProvider(ResourceProvider):
    """Stateless: safe to pickle into the engine; the client is built per call from inputs."""

    kind: ClassVar[str] = "object"
    compared: ClassVar[tuple[str, ...]] = ()
    replace_on: ClassVar[tuple[str, ...]] = ()
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def what(self, props: dict[str, Any], object_id: str | None = None) -> str:
        label = props.get("name") or props.get("display_name") or props.get("mcp_server_url")
        ident = object_id or props.get("adopt_id")
        parts = [self.kind, repr(label) if label else None, f"({ident})" if ident else None]
        return " ".join(p for p in parts if p)

    def hidden(self, props: dict[str, Any]) -> tuple[str, ...]:
        connection = props.get("connection") or {}
        return (
            str(connection.get("api_key") or ""),
            *tuple(str(props.get(f) or "") for f in self.secret_fields),
        )

    def returned_id(self, what: str, object_id: Any) -> str:
        """The id the platform returned, refused where it arrives when it is not one: it
        would become the path of every later call on the object (never called with it)."""
        problem = id_problem(self.kind, object_id)
        if problem is not None:
            fail(f"{what}: the platform returned {self.kind} id {object_id!r}; {problem}")
        return str(object_id)

    def client(self, props: dict[str, Any]) -> anthropic.Anthropic:
        return Connection.of(props).client()

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        olds, news = plain(olds), plain(news)
        changed = [
            key
            for key in self.compared
            if news.get(key) == UNKNOWN or olds.get(key) != news.get(key)
        ]
        return DiffResult(
            changes=bool(changed),
            replaces=[key for key in changed if key in self.replace_on],
            delete_before_replace=False,
        )

    # subclasses ----------------------------------------------------------------------------
    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The object's current fields (in input names), or None when it is gone or archived."""
        raise NotImplementedError

    def remove(
        self,
        id_: str,
        props: dict[str, Any],
        action: str,
        call: Callable[[anthropic.Anthropic], object],
    ) -> None:
        """Delete or archive; an object already gone is what `destroy` wanted."""
        with (
            calling(self.what(props, id_), action, hidden=self.hidden(props)),
            contextlib.suppress(anthropic.NotFoundError),
        ):
            call(self.client(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = plain(props)
        with calling(self.what(props, id_), "refresh", hidden=self.hidden(props)):
            try:
                observed = self.observe(self.client(props), id_, props)
            except anthropic.NotFoundError:
                observed = None
        if observed is None:
            return ReadResult(None, {})  # gone: the engine drops it from the state
        outs = {**props, **observed}
        inputs = {k: outs.get(k) for k in (*self.compared, "connection", "adopt_id") if k in outs}
        return ReadResult(id_, outs, inputs)


def with_secret_outputs(opts: pulumi.ResourceOptions | None, *names: str) -> pulumi.ResourceOptions:
    """Mark outputs secret even where the engine cannot infer it from a secret input."""
    return pulumi.ResourceOptions.merge(
        opts or pulumi.ResourceOptions(),
        pulumi.ResourceOptions(additional_secret_outputs=["connection", *names]),
    )


def metadata_change(
    old: dict[str, str] | None, new: dict[str, str] | None
) -> dict[str, str | None]:
    """The platform merges metadata: removed keys must be sent as null."""
    new = new or {}
    return {**{k: None for k in (old or {}) if k not in new}, **new}
