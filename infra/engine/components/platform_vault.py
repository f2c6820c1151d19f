"""The vault sessions pass as `vault_ids`, and one static-bearer credential per MCP server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.platform_api.vault import Vault, VaultArgs
from infra.platform_api.vault_credential import VaultCredential, VaultCredentialArgs
from infra.pure.config import McpServer, Vault as VaultConfig
from infra.pure.naming import vault_credential_name, vault_name


@dataclass(frozen=True)
class PlatformVaultArgs:
    environment: str
    vault: VaultConfig
    servers: list[McpServer]
    connection: pulumi.Input[dict[str, Any]]
    # Per server: its URL (from the tunnel's domain) and its current platform token.
    urls: dict[str, pulumi.Input[str]]
    tokens: dict[str, pulumi.Input[str]]
    # Per server: what must be rolled out before its credential changes (the server itself),
    # so the vault never holds a token the running server refuses.
    after: dict[str, list[pulumi.Resource]]


class PlatformVault(pulumi.ComponentResource):
    """Each server's token sits in exactly one credential, bound to exactly its URL."""

    vault: Vault
    credentials: dict[str, VaultCredential]

    def __init__(
        self, name: str, args: PlatformVaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:PlatformVault", name, None, opts)
        environment = args.environment
        self.vault = Vault(
            f"{name}-vault",
            VaultArgs(
                connection=args.connection,
                display_name=vault_name(environment, args.vault.display_name),
                metadata={"environment": environment},
                adopt_id=args.vault.id,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.credentials = {
            server.name: VaultCredential(
                f"{name}-{server.name}",
                VaultCredentialArgs(
                    connection=args.connection,
                    vault_id=self.vault.id,
                    mcp_server_url=args.urls[server.name],
                    token=args.tokens[server.name],
                    display_name=vault_credential_name(server),
                    metadata={"environment": environment, "mcp_server": server.name},
                ),
                pulumi.ResourceOptions(parent=self, depends_on=args.after.get(server.name, [])),
            )
            for server in args.servers
        }
        self.register_outputs({"vault_id": self.vault.id})
