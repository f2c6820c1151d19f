"""The MCP tunnel: created (or adopted by `tnl_...` id), its domain and connector token.

The platform assigns the domain; every MCP server URL derives from it. The
token goes from `reveal_token` straight into a secret output; raising
`token_epoch` calls `rotate_token` (the tunnel and its domain stay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from infra.platform_api.base import PlatformProvider, with_secret_outputs
from infra.platform_api.connection import calling, fail, plain
from infra.platform_api.sdk import anthropic
from infra.pure.dns_names import domain_problem


class TunnelProvider(PlatformProvider):
    kind = "tunnel"
    compared = ("display_name", "token_epoch", "adopt_id")
    replace_on = ("adopt_id",)
    secret_fields = ("token",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        client = self.client(props)
        what = self.what(props)
        with calling(what, "create", hidden=self.hidden(props)):
            if props.get("adopt_id"):
                tunnel = client.beta.tunnels.retrieve(props["adopt_id"])
                if tunnel.archived_at is not None:
                    fail(f"{what}: cannot adopt {tunnel.id}, it is archived")
            else:
                tunnel = client.beta.tunnels.create(display_name=props.get("display_name"))
        self.returned_id(what, tunnel.id)
        problem = _returned_problem(tunnel)
        if problem is not None:
            if not props.get("adopt_id"):  # nothing depends on it yet: leave nothing behind
                with calling(f"{what} ({tunnel.id})", "archive after a bad answer"):
                    client.beta.tunnels.archive(tunnel.id)
            fail(f"{what}: {problem}")
        expected = props.get("expected_domain")
        if props.get("adopt_id") and expected and expected != tunnel.domain:
            fail(
                f"{what}: tunnel.domain in the stack config is {expected}, but the platform "
                f"assigned {tunnel.domain}; correct it or remove it"
            )
        try:
            with calling(f"{what} ({tunnel.id})", "reveal token"):
                token = client.beta.tunnels.reveal_token(tunnel.id)
        except Exception:
            if not props.get("adopt_id"):  # leave nothing unrecorded behind
                with calling(f"{what} ({tunnel.id})", "archive after a failed create"):
                    client.beta.tunnels.archive(tunnel.id)
            raise
        return CreateResult(self.returned_id(what, tunnel.id), self._outs(props, tunnel, token))

    def _outs(
        self, props: dict[str, Any], tunnel: Any, token: anthropic.types.beta.BetaTunnelToken
    ) -> dict[str, Any]:
        return {
            **props,
            "domain": tunnel.domain,
            "token": token.tunnel_token,
            "token_id": token.id,
        }

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = plain(olds), plain(news)
        outs = {**olds, **news, "domain": olds.get("domain")}
        if news.get("token_epoch") != olds.get("token_epoch"):
            reason = f"token_epoch {olds.get('token_epoch')} -> {news.get('token_epoch')}"
            with calling(self.what(news, id_), "rotate token", hidden=self.hidden(olds)):
                token = self.client(news).beta.tunnels.rotate_token(id_, reason=reason)
            outs.update(token=token.tunnel_token, token_id=token.id)
        else:
            outs.update(token=olds.get("token"), token_id=olds.get("token_id"))
        # display_name has no update call: it is recorded as given, shown on the next refresh
        return UpdateResult(outs)

    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        tunnel = client.beta.tunnels.retrieve(object_id)
        if tunnel.archived_at is not None:
            return None
        problem = _returned_problem(tunnel)
        if problem is not None:
            fail(f"{self.what(props, object_id)}: {problem}")
        token = client.beta.tunnels.reveal_token(object_id)
        return {"domain": tunnel.domain, "token": token.tunnel_token, "token_id": token.id}

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = plain(props)
        self.remove(id_, props, "archive", lambda client: client.beta.tunnels.archive(id_))


def _returned_problem(tunnel: Any) -> str | None:
    """What is wrong with the domain the platform returned, before anything is built on it
    (every MCP server URL, the tunnel chart, the vault credentials)."""
    problem = domain_problem(str(tunnel.domain))
    if problem is None:
        return None
    return (
        f"the platform returned tunnel domain {tunnel.domain!r}, which is not usable: {problem[1]}"
    )


@dataclass(frozen=True)
class TunnelArgs:
    connection: pulumi.Input[dict[str, Any]]
    display_name: str
    token_epoch: int = 0
    adopt_id: str | None = None
    # The domain the stack config expects (an adopted tunnel's); checked, never sent.
    expected_domain: str | None = None


class Tunnel(Resource, module="agent-perimeter", name="Tunnel"):
    """The platform side of the MCP tunnel; `domain` feeds every MCP server URL."""

    domain: pulumi.Output[str]
    token: pulumi.Output[str]
    token_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: TunnelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "connection": args.connection,
            "display_name": args.display_name,
            "token_epoch": args.token_epoch,
            "adopt_id": args.adopt_id,
            "expected_domain": args.expected_domain,
            "domain": None,
            "token": None,
            "token_id": None,
        }
        super().__init__(TunnelProvider(), name, props, with_secret_outputs(opts, "token"))
