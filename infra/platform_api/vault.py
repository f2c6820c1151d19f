"""A vault: where the MCP servers' bearer tokens live; sessions pass its id as `vault_ids`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from infra.platform_api.base import PlatformProvider, metadata_change, with_secret_outputs
from infra.platform_api.connection import calling, fail, plain
from infra.platform_api.sdk import anthropic


class VaultProvider(PlatformProvider):
    kind = "vault"
    compared = ("display_name", "metadata", "adopt_id")
    replace_on = ("adopt_id",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        vaults = self.client(props).beta.vaults
        what = self.what(props)
        with calling(what, "create", hidden=self.hidden(props)):
            if props.get("adopt_id"):
                found = vaults.retrieve(props["adopt_id"])
                if found.archived_at is not None:
                    fail(f"{what}: cannot adopt {found.id}, it is archived")
                vault = vaults.update(
                    found.id,
                    display_name=props["display_name"],
                    metadata=metadata_change(found.metadata, props.get("metadata")),
                )
            else:
                vault = vaults.create(
                    display_name=props["display_name"], metadata=props.get("metadata") or {}
                )
        return CreateResult(self.returned_id(what, vault.id), props)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = plain(olds), plain(news)
        with calling(self.what(news, id_), "update", hidden=self.hidden(news)):
            self.client(news).beta.vaults.update(
                id_,
                display_name=news["display_name"],
                metadata=metadata_change(olds.get("metadata"), news.get("metadata")),
            )
        return UpdateResult(news)

    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        vault = client.beta.vaults.retrieve(object_id)
        if vault.archived_at is not None:
            return None
        return {"display_name": vault.display_name, "metadata": dict(vault.metadata)}

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = plain(props)
        self.remove(id_, props, "delete", lambda client: client.beta.vaults.delete(id_))


@dataclass(frozen=True)
class VaultArgs:
    connection: pulumi.Input[dict[str, Any]]
    display_name: str
    metadata: dict[str, str] | None = None
    adopt_id: str | None = None


class Vault(Resource, module="agent-perimeter", name="Vault"):
    def __init__(
        self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "connection": args.connection,
            "display_name": args.display_name,
            "metadata": args.metadata or {},
            "adopt_id": args.adopt_id,
        }
        super().__init__(VaultProvider(), name, props, with_secret_outputs(opts))
