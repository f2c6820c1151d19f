"""Credentials of one MCP server: a database password per tool, its backends' credentials and
the platform bearer token."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from functools import partial

import pulumi
import pulumi_random as random

from infra.engine.credentials import credential_secret
from infra.platform_api.token_rotation import TokenRotation
from infra.pure.agent import vault_credential
from infra.pure.config import McpServer, as_secret
from infra.pure.database.derived import KEY_LENGTH, scram_salt, tool_password
from infra.pure.database.scram import scram_sha256_verifier
from infra.pure.naming import (
    ANNOTATION_BACKEND,
    ANNOTATION_DATABASE_ROLE,
    ANNOTATION_GRANTS,
    ANNOTATION_MCP_SERVER_URL,
    CREDENTIAL_BACKEND,
    CREDENTIAL_DATABASE_ROLE,
    CREDENTIAL_PLATFORM_TOKEN,
    Placement,
    backend_secret_name,
    keyed_name,
    mcp_release,
    platform_token_secret_name,
    tool_role,
    tool_secret_name,
)


@dataclass(frozen=True)
class McpServerCredentialsArgs:
    placement: Placement
    server: McpServer
    # Raised by one to rotate every tool's database password (the stack's `rotation_epoch`).
    rotation_epoch: int
    # The server's URL, derived from the tunnel's domain: the one value the vault
    # credential, the agent definition and the tunnel route all come from.
    url: pulumi.Input[str]
    # backend name -> its credential from the stack's secrets (backends with `credential: true`)
    backend_credentials: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


PREVIOUS_TOKEN_KEY = "previous-token"


def slot_epoch(epoch: int, slot: int) -> int:
    """The latest epoch <= `epoch` that token slot `slot` (0 even, 1 odd) was generated for."""
    return epoch if epoch % 2 == slot else epoch - 1


def token_data(current: str, previous: str, retiring: int | None) -> dict[str, str]:
    """What the server's token Secret holds: the current token, and the previous one while
    a rotation rolls out (the server accepts every file in its token directory)."""
    data = {"token": current}
    if retiring is not None:
        data[PREVIOUS_TOKEN_KEY] = previous
    return data


def _keyed_secret_name(base: str, values: list[str]) -> str:
    key, credential = values
    return keyed_name(base, base64.b64decode(key), credential)


def _password(role: str, rotation_epoch: int, key: str) -> str:
    return tool_password(base64.b64decode(key), role, rotation_epoch)


def _verifier(role: str, password: str, key: str) -> str:
    return scram_sha256_verifier(password, scram_salt(base64.b64decode(key), role, password))


def _verifier_off_thread(role: str, values: list[str]) -> Awaitable[str]:
    password, key = values
    return asyncio.get_running_loop().run_in_executor(None, _verifier, role, password, key)


def grants_summary(server: McpServer, tool_name: str) -> str:
    tool = next(t for t in server.tools if t.name == tool_name)
    parts = []
    for grant in tool.grants:
        columns = f" ({', '.join(grant.columns)})" if grant.columns else ""
        parts.append(f"{', '.join(grant.privileges)} on {grant.table}{columns}")
    if tool.tenant_column:
        parts.append(f"rows where {tool.tenant_column} = the session's tenant")
    return "; ".join(parts)


class McpServerCredentials(pulumi.ComponentResource):
    """Generated, never configured: nobody can paste one credential into two places.

    Each database password is regenerated when `rotation_epoch` changes. The role
    provisioner gets only SCRAM verifiers derived here, never a password, so
    every password Secret has exactly one reader: its MCP server.

    The platform token rotates per server with `token_epoch`: two generated slots
    (even and odd epochs) hold the current and the previous token; during the `up`
    that raises the epoch the Secret carries both, and the next `up` drops the old.
    Each of those contents is a Secret of its own name, never an edited one.
    """

    verifiers: dict[str, pulumi.Output[str]]
    tool_secrets: dict[str, str]
    backend_secrets: dict[str, pulumi.Output[str]]
    platform_token: pulumi.Output[str]
    platform_token_secret: pulumi.Output[str]
    vault_credential: pulumi.Output[dict]

    def __init__(
        self,
        name: str,
        args: McpServerCredentialsArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agent-perimeter:index:McpServerCredentials", name, None, opts)
        server = args.server
        child = pulumi.ResourceOptions(parent=self)
        reader = mcp_release(server)

        self.verifiers = {}
        self.tool_secrets = {}
        self.backend_secrets = {}
        if server.credential_backends:
            self._backend_secrets(name, args, reader, child)
        if server.database is not None:
            self._tool_secrets(name, args, reader, child)

        epoch = server.token_epoch
        rotation = TokenRotation(f"{name}-token-rotation", server.name, epoch, child)
        slots = [
            random.RandomPassword(
                f"{name}-platform-token" + ("-odd" if slot else ""),
                length=48,
                special=False,
                keepers={"token_epoch": str(slot_epoch(epoch, slot))},
                opts=child,
            )
            for slot in (0, 1)
        ]
        current, previous = slots[epoch % 2].result, slots[(epoch + 1) % 2].result
        url = args.url
        self.platform_token = as_secret(current)
        # Renamed whenever its content changes (the rollout adding the previous token, the next
        # `up` dropping it): the engine then creates the new Secret before deleting the old one,
        # so a pod never starts while the Secret it mounts is missing.
        self.platform_token_secret = rotation.retiring.apply(
            lambda retiring: platform_token_secret_name(server, epoch, retiring)
        )
        data: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            current, previous, rotation.retiring
        ).apply(lambda v: token_data(v[0], v[1], v[2]))
        credential_secret(
            f"{name}-platform-token-secret",
            placement=args.placement,
            name=self.platform_token_secret,
            credential=CREDENTIAL_PLATFORM_TOKEN,
            reader=reader,
            data=as_secret(data),
            annotations={ANNOTATION_MCP_SERVER_URL: url},
            opts=child,
        )
        credential: pulumi.Output[dict] = pulumi.Output.all(url, self.platform_token).apply(
            lambda v: vault_credential(v[0], v[1])
        )
        self.vault_credential = as_secret(credential)
        self.register_outputs(
            {
                "tool_secrets": self.tool_secrets,
                "backend_secrets": self.backend_secrets,
                "platform_token_secret": self.platform_token_secret,
            }
        )

    def _tool_secrets(
        self,
        name: str,
        args: McpServerCredentialsArgs,
        reader: str,
        child: pulumi.ResourceOptions,
    ) -> None:
        """A password per tool, in a Secret its server alone reads, and the SCRAM verifier the
        role provisioner sets. Each password is derived from the server's one random key, its
        role and `rotation_epoch` (infra/pure/database/derived.py). The verifiers' PBKDF2 runs on
        worker threads (it releases the GIL): at 4096 iterations it was a sixth of a render."""
        server, epoch = args.server, args.rotation_epoch
        key = random.RandomBytes(f"{name}-tool-key", length=KEY_LENGTH, opts=child)
        for tool in server.tools:
            role = tool_role(server, tool)
            password = key.base64.apply(partial(_password, role, epoch))
            secret_name = tool_secret_name(server, tool, epoch)
            credential_secret(
                f"{name}-{tool.name}-secret",
                placement=args.placement,
                name=secret_name,
                credential=CREDENTIAL_DATABASE_ROLE,
                reader=reader,
                data={"username": role, "password": as_secret(password)},
                annotations={
                    ANNOTATION_DATABASE_ROLE: role,
                    ANNOTATION_GRANTS: grants_summary(server, tool.name),
                },
                opts=child,
            )
            self.tool_secrets[tool.name] = secret_name
            self.verifiers[role] = as_secret(
                pulumi.Output.all(password, key.base64).apply(partial(_verifier_off_thread, role))
            )

    def _backend_secrets(
        self, name: str, args: McpServerCredentialsArgs, reader: str, child: pulumi.ResourceOptions
    ) -> None:
        """A changed credential is a Secret of a new name, created before the old one is deleted
        (the pods roll onto it): the name carries a digest of the value keyed by a random key
        kept in the state, so it tells nothing about the credential."""
        server = args.server
        name_key = random.RandomBytes(f"{name}-backend-name-key", length=32, opts=child)
        for backend in server.credential_backends:
            credential = args.backend_credentials[backend.name]
            keyed: pulumi.Output[str] = pulumi.Output.all(name_key.base64, credential).apply(
                partial(_keyed_secret_name, backend_secret_name(server, backend.name))
            )
            secret_name = pulumi.Output.unsecret(keyed)
            credential_secret(
                f"{name}-backend-{backend.name}",
                placement=args.placement,
                name=secret_name,
                credential=CREDENTIAL_BACKEND,
                reader=reader,
                data={"credential": as_secret(credential)},
                annotations={ANNOTATION_BACKEND: backend.name},
                opts=child,
            )
            self.backend_secrets[backend.name] = secret_name
