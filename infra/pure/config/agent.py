"""The `agents` and `vault` sections: agent definitions and the servers they may use."""

from __future__ import annotations

from pydantic import Field

from infra.pure.config.types import MAX_MCP_SERVERS, DnsLabel, Identifier, Section, ShortName


class AgentServer(Section):
    """One MCP server an agent may use, and which of its tools (all when omitted)."""

    server: ShortName
    tools: list[Identifier] | None = Field(default=None, min_length=1)


class AgentSpec(Section):
    """One agent on the platform; its tools are a subset of the declared servers' tools."""

    name: DnsLabel
    model: str = Field(min_length=1, max_length=128)
    system_prompt_file: str = Field(min_length=1, description="relative to the stack file")
    description: str | None = None
    sandbox: ShortName
    mcp_servers: list[AgentServer] = Field(min_length=1, max_length=MAX_MCP_SERVERS)
    id: str | None = Field(default=None, pattern=r"^agent_[A-Za-z0-9]{4,64}$")


class Vault(Section):
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    id: str | None = Field(default=None, pattern=r"^vlt_[A-Za-z0-9]{4,64}$")
