"""The agent definition, published in-cluster so policies and the audit can cross-check it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.agent import agent_definition
from infra.config import PerimeterConfig
from infra.naming import LABEL_AGENT_DEFINITION, common_labels

DATA_KEY = "agent-definition.json"


@dataclass(frozen=True)
class AgentDefinitionArgs:
    config: PerimeterConfig


class AgentDefinition(pulumi.ComponentResource):
    """No credentials in it: those travel only in the `vault_credentials` secret output."""

    definition: dict[str, Any]

    def __init__(
        self, name: str, args: AgentDefinitionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:AgentDefinition", name, None, opts)
        config = args.config
        self.definition = agent_definition(config)
        k8s.core.v1.ConfigMap(
            f"{name}-configmap",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="agent-definition",
                namespace=config.namespace,
                labels={
                    **common_labels("agent-definition", "agent-definition", config.environment),
                    LABEL_AGENT_DEFINITION: "true",
                },
            ),
            data={DATA_KEY: json.dumps(self.definition, indent=2, sort_keys=True)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"definition": self.definition})
