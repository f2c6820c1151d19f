"""The stack file's keys: where the settings and each secret live in `Pulumi.<stack>.yaml`."""

from __future__ import annotations

PROJECT = "agent-perimeter"
PERIMETER_KEY = f"{PROJECT}:perimeter"

# Secret stack-config keys (set with `pulumi config set --secret`).
SECRET_KEYS: dict[str, str] = {
    "tunnelToken": "the tunnel token issued with the tunnel id (only with platform.enabled: false)",
    "tunnelTlsCert": "PEM certificate the proxy presents on the inner TLS layer",
    "tunnelTlsKey": "PEM private key of that certificate",
    "tunnelCaCert": "PEM CA of that certificate, registered with the tunnel (platform.enabled)",
    "environmentKeys": "object: sandbox pool name -> that pool's environment service key",
    "databaseAdminPasswords": "object: database name -> admin password",
    "platformApiKey": "the platform API key `pulumi up` creates the platform objects with",
    "backendCredentials": "object: MCP server name -> backend name -> that backend's credential",
}
# Old secret keys and what replaced them: a stack still setting one gets told what to change.
RENAMED_SECRET_KEYS = {
    "environmentKey": "environmentKeys (an object keyed by sandbox pool name): "
    "`pulumi config set --secret --path 'agent-perimeter:environmentKeys.<pool>' <key>`",
}

OBJECT_SECRETS = {
    "databaseAdminPasswords": "databases",
    "environmentKeys": "sandboxes",
    "backendCredentials": "MCP server, then backend",
}
