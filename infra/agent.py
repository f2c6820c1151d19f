"""The agent definition the platform needs, derived from the config (no Pulumi involved).

Both halves come from the same server list, so they cannot disagree: every
declared server has exactly one `mcp_toolset`, tools are allowlisted, reads
may run without asking and writes always ask.
"""

from __future__ import annotations

from typing import Any

from infra.config import MAX_MCP_SERVERS, McpServer, PerimeterConfig


def mcp_server_entry(config: PerimeterConfig, server: McpServer) -> dict[str, str]:
    return {"type": "url", "name": server.name, "url": config.mcp_url(server)}


def toolset_entry(server: McpServer) -> dict[str, Any]:
    return {
        "type": "mcp_toolset",
        "mcp_server_name": server.name,
        "default_config": {"enabled": False},
        "configs": [
            {
                "name": tool.name,
                "enabled": True,
                "permission_policy": {"type": tool.effective_permission_policy},
            }
            for tool in server.tools
        ],
    }


def agent_definition(config: PerimeterConfig) -> dict[str, Any]:
    """`mcp_servers` + `tools` for the agent: no credentials, those live in the vault."""
    servers = config.mcp_servers
    assert len(servers) <= MAX_MCP_SERVERS, "config validation caps the server count"
    return {
        "mcp_servers": [mcp_server_entry(config, s) for s in servers],
        "tools": [toolset_entry(s) for s in servers],
    }


def vault_credential(url: str, token: Any) -> dict[str, Any]:
    """One static bearer credential; the harness matches it to a server by exact URL."""
    return {"type": "static_bearer", "mcp_server_url": url, "token": token}
