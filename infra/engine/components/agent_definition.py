"""One agent: its definition published in-cluster (policies and the audit cross-check it)
and, with the platform enabled, the agent itself on the platform."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.contract.names import AGENT_DEFINITION_KEY
from infra.engine.kubernetes_object import KubernetesObject, object_meta
from infra.platform_api.agent import Agent, AgentArgs
from infra.pure.agent import Chosen, agent_definition, agent_spec
from infra.pure.config import AgentSpec
from infra.pure.naming import LABEL_AGENT_DEFINITION, Placement, common_labels


def configmap_name(agent: AgentSpec | None) -> str:
    return f"agent-definition-{agent.name}" if agent else "agent-definition"


@dataclass(frozen=True)
class AgentDefinitionArgs:
    placement: Placement
    # None: the legacy single definition over every server (platform disabled, no agents).
    agent: AgentSpec | None
    # The servers it may use, each with the tools it may call, resolved from the config.
    chosen: Chosen
    # The tunnel's domain: every URL in the definition derives from it.
    domain: pulumi.Input[str]
    # The platform API connection; None when the platform side is not managed.
    connection: pulumi.Input[dict[str, Any]] | None = None
    # The agent's system prompt, read from its `system_prompt_file`.
    system_prompt: str = ""


class AgentDefinition(pulumi.ComponentResource):
    """No credentials in it: those live only in the vault."""

    definition: pulumi.Output[dict[str, Any]]
    platform_agent: Agent | None

    def __init__(
        self, name: str, args: AgentDefinitionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:AgentDefinition", name, None, opts)
        place, agent, chosen = args.placement, args.agent, args.chosen
        domain = pulumi.Output.from_input(args.domain)
        self.definition = domain.apply(lambda d: agent_definition(chosen, d))
        instance = configmap_name(agent)
        KubernetesObject(
            f"{name}-configmap",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": object_meta(
                    instance,
                    place.namespace,
                    {
                        **common_labels("agent-definition", instance, place.environment),
                        LABEL_AGENT_DEFINITION: "true",
                    },
                ),
                "data": {
                    AGENT_DEFINITION_KEY: self.definition.apply(
                        lambda d: json.dumps(d, indent=2, sort_keys=True)
                    )
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.platform_agent = None
        if agent is not None and args.connection is not None:
            spec = domain.apply(lambda d: agent_spec(agent, args.system_prompt, chosen, d))
            self.platform_agent = Agent(
                f"{name}-platform",
                AgentArgs(
                    connection=args.connection,
                    name=agent.name,
                    model=agent.model,
                    system=args.system_prompt,
                    description=agent.description,
                    mcp_servers=spec.apply(lambda s: s["mcp_servers"]),
                    tools=spec.apply(lambda s: s["tools"]),
                    metadata={
                        "environment": place.environment,
                        "sandbox_pool": agent.sandbox,
                    },
                    adopt_id=agent.id,
                ),
                pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"definition": self.definition})
