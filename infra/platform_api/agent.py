"""A versioned agent: name, model, system prompt and the MCP allowlist the bundle computes.

Every update sends the version Pulumi last saw, so an edit made on the platform
in the meantime is refused (409) instead of overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, UpdateResult

from infra.platform_api.base import PlatformProvider, metadata_change, with_secret_outputs
from infra.platform_api.connection import calling, fail, plain, platform_message
from infra.platform_api.sdk import anthropic

DEFINITION = ("name", "model", "system", "description", "mcp_servers", "tools")


def _observed(agent: Any) -> dict[str, Any]:
    return {
        "name": agent.name,
        "model": agent.model.id,
        "system": agent.system,
        "description": agent.description,
        "mcp_servers": [s.model_dump(mode="json", exclude_none=True) for s in agent.mcp_servers],
        "tools": [t.model_dump(mode="json", exclude_none=True) for t in agent.tools],
        "metadata": dict(agent.metadata),
        "version": agent.version,
    }


class AgentProvider(PlatformProvider):
    kind = "agent"
    compared = (*DEFINITION, "metadata", "adopt_id")
    replace_on = ("adopt_id",)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        agents = self.client(props).beta.agents
        what = self.what(props)
        fields: dict[str, Any] = {k: props.get(k) for k in DEFINITION}
        with calling(what, "create", hidden=self.hidden(props)):
            if props.get("adopt_id"):
                found = agents.retrieve(props["adopt_id"])
                if found.archived_at is not None:
                    fail(f"{what}: cannot adopt {found.id}, it is archived")
                agent = agents.update(
                    found.id,
                    version=found.version,
                    metadata=metadata_change(found.metadata, props.get("metadata")),
                    **fields,
                )
            else:
                agent = agents.create(metadata=props.get("metadata") or {}, **fields)
        return CreateResult(self.returned_id(what, agent.id), {**props, "version": agent.version})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = plain(olds), plain(news)
        what = self.what(news, id_)
        version = int(olds.get("version") or 0)
        fields: dict[str, Any] = {k: news.get(k) for k in DEFINITION}
        with calling(what, "update", hidden=self.hidden(news)):
            try:
                agent = self.client(news).beta.agents.update(
                    id_,
                    version=version,
                    metadata=metadata_change(olds.get("metadata"), news.get("metadata")),
                    **fields,
                )
            except anthropic.ConflictError as exc:
                fail(
                    f"{what}: version conflict, the agent was changed on the platform after "
                    f"version {version} ({platform_message(exc)}); run `pulumi refresh`, "
                    "review the change, then `pulumi up` again"
                )
        return UpdateResult({**news, "version": agent.version})

    def observe(
        self, client: anthropic.Anthropic, object_id: str, props: dict[str, Any]
    ) -> dict[str, Any] | None:
        agent = client.beta.agents.retrieve(object_id)
        return None if agent.archived_at is not None else _observed(agent)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = plain(props)
        self.remove(id_, props, "archive", lambda client: client.beta.agents.archive(id_))


@dataclass(frozen=True)
class AgentArgs:
    connection: pulumi.Input[dict[str, Any]]
    name: str
    model: str
    system: str
    mcp_servers: pulumi.Input[list[dict[str, Any]]]
    tools: pulumi.Input[list[dict[str, Any]]]
    description: str | None = None
    metadata: dict[str, str] | None = None
    adopt_id: str | None = None


class Agent(Resource, module="agent-perimeter", name="Agent"):
    version: pulumi.Output[int]

    def __init__(
        self, name: str, args: AgentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "connection": args.connection,
            "name": args.name,
            "model": args.model,
            "system": args.system,
            "description": args.description,
            "mcp_servers": args.mcp_servers,
            "tools": args.tools,
            "metadata": args.metadata or {},
            "adopt_id": args.adopt_id,
            "version": None,
        }
        super().__init__(AgentProvider(), name, props, with_secret_outputs(opts))
