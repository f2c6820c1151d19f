"""The Pulumi source: the same schema read from the engine's config, and the secrets from
their own secret keys. The Pulumi SDK is imported only here, only when a program runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from infra.offline.errors import ConfigError

if TYPE_CHECKING:  # the Pulumi SDK is imported only where a Pulumi program runs
    import pulumi

from infra.pure.config.keys import OBJECT_SECRETS, PROJECT, RENAMED_SECRET_KEYS, SECRET_KEYS
from infra.pure.config.perimeter import PerimeterConfig
from infra.pure.config.stack_file import PROJECT_ROOT, parse_perimeter

# --- the Pulumi side: structured settings plus the secrets ------------------------------------


T = TypeVar("T")


def as_secret(value: pulumi.Output[T]) -> pulumi.Output[T]:
    """`Output.secret` keeping the value type (mypy cannot infer it through `Input[U]`)."""
    import pulumi

    return pulumi.Output.secret(value)


@dataclass(frozen=True)
class PerimeterSecrets:
    """Secret inputs, always as Pulumi secret Outputs so they never print in plain text.

    `tunnel_token` is set only with the platform disabled (otherwise the platform
    reveals it); `tunnel_ca_cert` and `platform_api_key` only with it enabled.
    """

    tunnel_token: pulumi.Output[str] | None
    tunnel_tls_cert: pulumi.Output[str]
    tunnel_tls_key: pulumi.Output[str]
    environment_keys: dict[str, pulumi.Output[str]]
    database_admin_passwords: dict[str, pulumi.Output[str]]
    tunnel_ca_cert: pulumi.Output[str] | None = None
    platform_api_key: pulumi.Output[str] | None = None
    # (server, backend) -> that backend's credential, for backends with `credential: true`.
    backend_credentials: Mapping[tuple[str, str], pulumi.Output[str]] = field(default_factory=dict)


def backend_credential_keys(config: PerimeterConfig) -> list[str]:
    """`<server>.<backend>` of every backend credential the stack must hold."""
    return [f"{s.name}.{b.name}" for s in config.mcp_servers for b in s.credential_backends]


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def required_secrets(config: PerimeterConfig) -> list[str]:
    """The secret keys one environment needs, by whether it manages the platform side."""
    keys = ["tunnelTlsCert", "tunnelTlsKey", "environmentKeys"]
    if config.databases:
        keys.append("databaseAdminPasswords")
    if backend_credential_keys(config):
        keys.append("backendCredentials")
    if config.platform.enabled:
        return [*keys, "tunnelCaCert", "platformApiKey"]
    return ["tunnelToken", *keys]


def offline_secrets(config: PerimeterConfig) -> PerimeterSecrets:
    """Visible placeholders for the offline commands, which never see real secrets."""
    import pulumi

    def placeholder(key: str) -> pulumi.Output[str]:
        return pulumi.Output.secret(f"<secret:{key}>")

    enabled = config.platform.enabled
    return PerimeterSecrets(
        tunnel_token=None if enabled else placeholder("tunnelToken"),
        tunnel_tls_cert=placeholder("tunnelTlsCert"),
        tunnel_tls_key=placeholder("tunnelTlsKey"),
        environment_keys={
            pool.name: placeholder(f"environmentKeys.{pool.name}") for pool in config.sandboxes
        },
        database_admin_passwords={
            name: placeholder(f"databaseAdminPasswords.{name}") for name in config.databases
        },
        tunnel_ca_cert=placeholder("tunnelCaCert") if enabled else None,
        platform_api_key=placeholder("platformApiKey") if enabled else None,
        backend_credentials={
            tuple(key.split(".")): placeholder(f"backendCredentials.{key}")  # type: ignore[misc]
            for key in backend_credential_keys(config)
        },
    )


def load_pulumi() -> tuple[PerimeterConfig, PerimeterSecrets]:
    """Read the stack's config under `pulumi up`/`preview`; raise one RunError listing all problems."""
    import pulumi

    stack = pulumi.get_stack()
    source = f"Pulumi.{stack}.yaml"
    cfg = pulumi.Config(PROJECT)
    root = PROJECT_ROOT
    try:
        config = parse_perimeter(cfg.get_object("perimeter"), source, root)
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None

    problems: list[tuple[str, str]] = []
    for old, replacement in RENAMED_SECRET_KEYS.items():
        if cfg.get(old) is not None:
            problems.append((f"{PROJECT}:{old}", f"replaced by {replacement}"))
    values: dict[str, Any] = {}
    names = {
        "databaseAdminPasswords": list(config.databases),
        "environmentKeys": [p.name for p in config.sandboxes],
        "backendCredentials": backend_credential_keys(config),
    }
    required = required_secrets(config)
    for key in required:
        meaning = SECRET_KEYS[key]
        value = cfg.get_secret_object(key) if key in OBJECT_SECRETS else cfg.get_secret(key)
        if value is None:
            problems.append(
                (f"{PROJECT}:{key}", f"missing: set {meaning} with `pulumi config set --secret`")
            )
        elif not pulumi.runtime.is_config_secret(f"{PROJECT}:{key}"):
            problems.append(
                (
                    f"{PROJECT}:{key}",
                    "written in plain text in the stack file; set it with "
                    "`pulumi config set --secret` (the value is not shown here)",
                )
            )
        values[key] = value
    for key, wanted in names.items():
        if key not in required:
            continue
        given = cfg.get_object(key) or {}
        if not isinstance(given, Mapping):
            problems.append(
                (f"{PROJECT}:{key}", f"must be an object keyed by {OBJECT_SECRETS[key]}")
            )
            continue
        missing = [name for name in wanted if _dig(given, name) is None]
        if values.get(key) is not None and missing:
            problems.append((f"{PROJECT}:{key}", f"no value for: {', '.join(missing)}"))
    if problems:
        raise pulumi.RunError(str(ConfigError(source, problems)))

    def entries(key: str) -> dict[str, pulumi.Output[str]]:
        whole = values.get(key)
        if whole is None:
            return {}
        return {
            name: as_secret(whole.apply(lambda d, n=name: str(_dig(d, n)))) for name in names[key]
        }

    return config, PerimeterSecrets(
        tunnel_token=values.get("tunnelToken"),
        tunnel_tls_cert=values["tunnelTlsCert"],
        tunnel_tls_key=values["tunnelTlsKey"],
        environment_keys=entries("environmentKeys"),
        database_admin_passwords=entries("databaseAdminPasswords"),
        tunnel_ca_cert=values.get("tunnelCaCert"),
        platform_api_key=values.get("platformApiKey"),
        backend_credentials={
            (key.split(".")[0], key.split(".")[1]): value
            for key, value in entries("backendCredentials").items()
        },
    )
