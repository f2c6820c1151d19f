"""One `static_bearer` credential: an MCP server's platform token, bound to its exact URL.

The harness matches a credential to a server by URL, character for character, so
the URL is the same value the agent definition and the tunnel route come from.
A new token is written in place (`update`); a new URL or vault is a new credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from infra.platform_api.base import PlatformProvider, metadata_change, with_secret_outputs
from infra.platform_api.connection import calling, fail, plain
from infra.platform_api.sdk import anthropic

STATIC_BEARER = "static_bearer"


class VaultCredentialProvider(PlatformProvider):
    kind = "vault credential"
    compared = ("vault_id", "mcp_server_url", "token", "display_name", "metadata", "adopt_id")
    replace_on = ("vault_id", "mcp_server_url", "adopt_id")
    secret_fields = ("token",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        credentials = self.client(props).beta.vaults.credentials
        what = self.what(props)
        with calling(what, "create", hidden=self.hidden(props)):
            if props.get("adopt_id"):
                found = credentials.retrieve(props["adopt_id"], vault_id=props["vault_id"])
                url = getattr(found.auth, "mcp_server_url", None)
                if found.auth.type != STATIC_BEARER or url != props["mcp_server_url"]:
                    fail(
                        f"{what}: cannot adopt {found.id}: it is a {found.auth.type} credential "
                        f"for {url}, not a static_bearer for {props['mcp_server_url']}"
                    )
                credential = credentials.update(
                    found.id,
                    vault_id=props["vault_id"],
                    auth={"type": "static_bearer", "token": props["token"]},
                    display_name=props.get("display_name"),
                    metadata=metadata_change(found.metadata, props.get("metadata")),
                )
            else:
                credential = credentials.create(
                    props["vault_id"],
                    auth={
                        "type": "static_bearer",
                        "mcp_server_url": props["mcp_server_url"],
                        "token": props["token"],
                    },
                    display_name=props.get("display_name"),
                    metadata=props.get("metadata") or {},
                )
        return CreateResult(self.returned_id(what, credential.id), props)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = plain(olds), plain(news)
        change: dict[str, Any] = {
            "display_name": news.get("display_name"),
            "metadata": metadata_change(olds.get("metadata"), news.get("metadata")),
        }
        if news.get("token") != olds.get("token"):
            change["auth"] = {"type": "static_bearer", "token": news["token"]}
        hidden = self.hidden(news) + self.hidden(olds)
        with calling(self.what(news, id_), "update", hidden=hidden):
            self.client(news).beta.vaults.credentials.update(
                id_, vault_id=news["vault_id"], **change
            )
        return UpdateResult(news)

    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        found = client.beta.vaults.credentials.retrieve(object_id, vault_id=props["vault_id"])
        if found.archived_at is not None:
            return None
        # The token is write-only on the platform: the state keeps the one last written.
        return {
            "mcp_server_url": getattr(found.auth, "mcp_server_url", None),
            "display_name": found.display_name,
            "metadata": dict(found.metadata),
        }

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = plain(props)
        self.remove(
            id_,
            props,
            "delete",
            lambda client: client.beta.vaults.credentials.delete(id_, vault_id=props["vault_id"]),
        )


@dataclass(frozen=True)
class VaultCredentialArgs:
    connection: pulumi.Input[dict[str, Any]]
    vault_id: pulumi.Input[str]
    mcp_server_url: pulumi.Input[str]
    token: pulumi.Input[str]
    display_name: str
    metadata: dict[str, str] | None = None
    adopt_id: str | None = None


class VaultCredential(Resource, module="agent-perimeter", name="VaultCredential"):
    mcp_server_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: VaultCredentialArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "connection": args.connection,
            "vault_id": args.vault_id,
            "mcp_server_url": args.mcp_server_url,
            "token": pulumi.Output.secret(args.token),
            "display_name": args.display_name,
            "metadata": args.metadata or {},
            "adopt_id": args.adopt_id,
        }
        super().__init__(VaultCredentialProvider(), name, props, with_secret_outputs(opts, "token"))
