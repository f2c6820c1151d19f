"""A `self_hosted` environment: one per sandbox pool (trust boundary).

The environment key the workers use is not minted by this API; the operator
supplies it (`agent-perimeter:environmentKeys.<pool>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from infra.platform_api.base import PlatformProvider, metadata_change, with_secret_outputs
from infra.platform_api.connection import calling, fail, plain
from infra.platform_api.sdk import anthropic


class EnvironmentProvider(PlatformProvider):
    kind = "environment"
    compared = ("name", "description", "metadata", "adopt_id")
    replace_on = ("adopt_id",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        environments = self.client(props).beta.environments
        what = self.what(props)
        with calling(what, "create", hidden=self.hidden(props)):
            if props.get("adopt_id"):
                found = environments.retrieve(props["adopt_id"])
                if found.archived_at is not None or found.config.type != "self_hosted":
                    fail(f"{what}: cannot adopt {found.id}: archived or not self_hosted")
                env = environments.update(
                    found.id,
                    name=props["name"],
                    description=props.get("description"),
                    metadata=metadata_change(found.metadata, props.get("metadata")),
                )
            else:
                env = environments.create(
                    name=props["name"],
                    config={"type": "self_hosted"},
                    description=props.get("description"),
                    metadata=props.get("metadata") or {},
                )
        return CreateResult(self.returned_id(what, env.id), props)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = plain(olds), plain(news)
        with calling(self.what(news, id_), "update", hidden=self.hidden(news)):
            self.client(news).beta.environments.update(
                id_,
                name=news["name"],
                description=news.get("description"),
                metadata=metadata_change(olds.get("metadata"), news.get("metadata")),
            )
        return UpdateResult(news)

    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        env = client.beta.environments.retrieve(object_id)
        if env.archived_at is not None:
            return None
        return {"name": env.name, "description": env.description, "metadata": dict(env.metadata)}

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = plain(props)
        self.remove(id_, props, "delete", lambda client: client.beta.environments.delete(id_))


@dataclass(frozen=True)
class EnvironmentArgs:
    connection: pulumi.Input[dict[str, Any]]
    name: str
    description: str | None = None
    metadata: dict[str, str] | None = None
    adopt_id: str | None = None


class Environment(Resource, module="agent-perimeter", name="Environment"):
    """Its id is what the pool's workers poll (`ANTHROPIC_ENVIRONMENT_ID`)."""

    def __init__(
        self, name: str, args: EnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "connection": args.connection,
            "name": args.name,
            "description": args.description,
            "metadata": args.metadata or {},
            "adopt_id": args.adopt_id,
        }
        super().__init__(EnvironmentProvider(), name, props, with_secret_outputs(opts))
