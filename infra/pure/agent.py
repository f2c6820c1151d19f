"""The agent definitions the platform needs, derived from the config (no Pulumi involved).

Both halves come from the same server list, so they cannot disagree: every
server an agent uses has exactly one `mcp_toolset`, tools are allowlisted, reads
may run without asking and writes always ask. Every URL derives from the
tunnel's domain (`domain`, as the platform assigned it; a placeholder offline).
"""

from __future__ import annotations

from typing import Any

from infra.pure.config import MAX_MCP_SERVERS, AgentSpec, McpServer, PerimeterConfig, Tool
from infra.pure.naming import mcp_url

# MCP toolsets ask by default; written out so the platform's echo equals what we sent.
ASK = {"type": "always_ask"}


# Each server the agent may use, with the tools it may call.
Chosen = list[tuple[McpServer, list[Tool]]]


def mcp_server_entry(server: McpServer, domain: str) -> dict[str, str]:
    return {"type": "url", "name": server.name, "url": mcp_url(server, domain)}


def toolset_entry(server: McpServer, tools: list[Tool] | None = None) -> dict[str, Any]:
    return {
        "type": "mcp_toolset",
        "mcp_server_name": server.name,
        "default_config": {"enabled": False, "permission_policy": dict(ASK)},
        "configs": [
            {
                "name": tool.name,
                "enabled": True,
                "permission_policy": {"type": tool.effective_permission_policy},
            }
            for tool in (server.tools if tools is None else tools)
        ],
    }


def agent_definition(chosen: Chosen, domain: str) -> dict[str, Any]:
    """`mcp_servers` + `tools` of one agent (of every server for the legacy definition).

    No credentials: those live in the vault.
    """
    assert len(chosen) <= MAX_MCP_SERVERS, "config validation caps the server count"
    return {
        "mcp_servers": [mcp_server_entry(s, domain) for s, _ in chosen],
        "tools": [toolset_entry(s, tools) for s, tools in chosen],
    }


def agent_spec(agent: AgentSpec, system: str, chosen: Chosen, domain: str) -> dict[str, Any]:
    """Everything the platform's agent holds: name, model, instructions and its allowlist."""
    return {
        "name": agent.name,
        "model": agent.model,
        "system": system,
        "description": agent.description,
        "sandbox": agent.sandbox,
        **agent_definition(chosen, domain),
    }


def vault_credential(url: str, token: Any) -> dict[str, Any]:
    """One static bearer credential; the harness matches it to a server by exact URL."""
    return {"type": "static_bearer", "mcp_server_url": url, "token": token}


def agent_tools(
    config: PerimeterConfig, agent: AgentSpec | None
) -> list[tuple[McpServer, list[Tool]]]:
    """Each server the agent may use, with the tools it may call; every server and tool
    for the legacy single definition (no agent)."""
    if agent is None:
        return [(s, list(s.tools)) for s in config.mcp_servers]
    chosen = []
    for use in agent.mcp_servers:
        server = config.server(use.server)
        allowed = use.tools or [t.name for t in server.tools]
        chosen.append((server, [t for t in server.tools if t.name in allowed]))
    return chosen
