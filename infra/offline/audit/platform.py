"""The platform half of the audit: which vault credential holds which server's token, for
which URL, and every direct path from a sandbox pool to an MCP server."""

from __future__ import annotations

from typing import Any

from infra.offline.audit.findings import WARNING, Flag
from infra.pure.config import PerimeterConfig
from infra.pure.naming import (
    mcp_release,
    platform_token_secret_name,
    sandbox_release,
    vault_credential_name,
    vault_name,
)


def vault_credentials(config: PerimeterConfig) -> list[dict[str, Any]]:
    """One row per server: the credential, its vault, the exact URL, where the token lives."""
    vault = vault_name(config.environment, config.vault.display_name)
    return [
        {
            "credential": vault_credential_name(server),
            "vault": vault if config.platform.enabled else "(by hand: platform.enabled is false)",
            "mcp_server": server.name,
            "mcp_server_url": config.mcp_url(server),
            "token_secret": platform_token_secret_name(server, server.token_epoch),
            "token_epoch": server.token_epoch,
            "agents": [
                a.name for a in config.agents if server.name in {u.server for u in a.mcp_servers}
            ],
        }
        for server in config.mcp_servers
    ]


def direct_path_flags(config: PerimeterConfig) -> list[Flag]:
    """Each opted-in path bypasses the platform's approval gate: a reviewer must see it."""
    return [
        Flag(
            "sandbox-no-direct-mcp-access",
            f"{sandbox_release(pool.name)} -> {mcp_release(name)}",
            f"sandbox pool {pool.name} may call MCP server {name} directly, bypassing the "
            "platform's approval gate (direct_mcp_access)",
            WARNING,
        )
        for pool in config.sandboxes
        for name in pool.direct_mcp_access
    ]
