"""mcp-server's per-server runtime: TLS, backends and their credentials, config files, extras.

Servers of every kind: one fronting an HTTP API has backends and no database; its
credentials are files like every other; its config files roll the pods when edited.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.pure import naming

from .helm_render import HelmFailed, Manifest, only, render
from .test_mcp_server import container, env_map
from .values_sets import NAMESPACE

pytestmark = pytest.mark.helm

RELEASE = naming.mcp_release("billing")
TLS_DIR = "/etc/mcp-server/tls"
CONFIG_DIR = "/etc/mcp-server/config"
BACKENDS_DIR = "/var/run/secrets/mcp-backends"
BILLING_API = {
    "name": "billing-api",
    "host": "billing.internal.example.com",
    "port": 443,
    "tls": True,
}
QUEUE = {"name": "queue", "host": "10.40.0.8", "port": 5672, "tls": False}


def billing(**overrides: Any) -> dict[str, Any]:
    """An HTTP-backed server: two backends, one credential, no database."""
    values: dict[str, Any] = {
        "serverName": "billing",
        "database": None,
        "tls": {"secretName": naming.server_tls_secret("billing")},
        "backends": [BILLING_API, QUEUE],
        "backendCredentials": [
            {"backend": "billing-api", "secretName": "mcp-server-billing-backend-billing-api"}
        ],
    }
    return {**values, **overrides}


def rendered(values: dict[str, Any]) -> list[Manifest]:
    return render("mcp-server", values, RELEASE, NAMESPACE)


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    return dict(only(objects, "Deployment")["spec"]["template"]["spec"])


def mounted(objects: list[Manifest], path: str) -> dict[str, Any]:
    """The volume mounted at `path` (asserting the mount is read-only)."""
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["mountPath"] == path]
    assert mount["readOnly"] is True
    return next(v for v in pod_spec(objects)["volumes"] if v["name"] == mount["name"])


def test_tls_mounts_the_serving_certificate_and_probes_over_https() -> None:
    objects = rendered(billing())
    assert mounted(objects, TLS_DIR)["secret"] == {
        "secretName": "mcp-server-billing-tls",
        "defaultMode": 0o440,
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
    }
    env = env_map(container(objects))
    assert (env["MCP_TLS_CERT_FILE"], env["MCP_TLS_KEY_FILE"]) == (
        f"{TLS_DIR}/tls.crt",
        f"{TLS_DIR}/tls.key",
    )
    for probe in ("livenessProbe", "readinessProbe"):
        assert container(objects)[probe]["httpGet"]["scheme"] == "HTTPS"
    port = only(objects, "Service")["spec"]["ports"][0]
    assert (port["name"], port["targetPort"]) == ("https", "https")


def test_without_tls_nothing_of_it_renders() -> None:
    objects = rendered(billing(tls={"secretName": ""}))
    c = container(objects)
    assert not {"MCP_TLS_CERT_FILE", "MCP_TLS_KEY_FILE"} & set(env_map(c))
    assert TLS_DIR not in {m["mountPath"] for m in c["volumeMounts"]}
    assert "scheme" not in c["livenessProbe"]["httpGet"]


def test_backends_become_environment_variables() -> None:
    env = env_map(container(rendered(billing())))
    assert {k: v for k, v in env.items() if k.startswith("BACKEND_")} == {
        "BACKEND_BILLING_API_HOST": "billing.internal.example.com",
        "BACKEND_BILLING_API_PORT": "443",
        "BACKEND_BILLING_API_TLS": "true",
        "BACKEND_BILLING_API_CREDENTIAL_FILE": f"{BACKENDS_DIR}/billing-api/credential",
        "BACKEND_QUEUE_HOST": "10.40.0.8",
        "BACKEND_QUEUE_PORT": "5672",
        "BACKEND_QUEUE_TLS": "false",
    }


def test_each_backend_credential_is_its_own_read_only_file() -> None:
    objects = rendered(billing())
    assert mounted(objects, f"{BACKENDS_DIR}/billing-api")["secret"] == {
        "secretName": "mcp-server-billing-backend-billing-api",
        "defaultMode": 0o440,
        "items": [{"key": "credential", "path": "credential"}],
    }
    assert f"{BACKENDS_DIR}/queue" not in {
        m["mountPath"] for m in container(objects)["volumeMounts"]
    }
    assert all("valueFrom" not in e for e in container(objects)["env"])


def test_a_server_without_a_database_renders_nothing_of_one() -> None:
    for values in (billing(), billing(database={"host": ""})):
        objects = rendered(values)
        env = env_map(container(objects))
        assert not [k for k in env if k.startswith("DATABASE_")]
        assert "MCP_DATABASE_CREDENTIALS_DIR" not in env
        names = {v["name"] for v in pod_spec(objects)["volumes"]}
        assert not {"database-credentials", "database-ca"} & names
        annotations = only(objects, "Deployment")["metadata"].get("annotations") or {}
        assert "agent-perimeter.io/database-roles" not in annotations


def test_a_server_with_a_database_and_a_backend_gets_both() -> None:
    values = billing(
        database={"host": "10.20.0.15", "port": 5432, "name": "billing", "sslmode": "require"},
        toolCredentials=[
            {"tool": "get_invoice", "role": "mcp_billing_get_invoice", "secretName": "db-get"}
        ],
    )
    env = env_map(container(rendered(values)))
    assert env["DATABASE_HOST"] == "10.20.0.15"
    assert env["BACKEND_BILLING_API_HOST"] == "billing.internal.example.com"
    assert env["MCP_DATABASE_CREDENTIALS_DIR"] == "/var/run/secrets/agent-perimeter/database"


def test_config_files_are_one_config_map_mounted_read_only() -> None:
    files = {"billing.yaml": "currency: EUR\n", "routes.json": '{"a": 1}'}
    objects = rendered(billing(configFiles=files))
    config_map = only(objects, "ConfigMap")
    assert config_map["metadata"]["name"] == f"{RELEASE}-config"
    assert config_map["metadata"]["labels"][naming.LABEL_INSTANCE] == RELEASE
    assert config_map["data"] == files
    assert mounted(objects, CONFIG_DIR)["configMap"] == {
        "name": f"{RELEASE}-config",
        "defaultMode": 0o444,
    }
    assert env_map(container(objects))["MCP_CONFIG_DIR"] == CONFIG_DIR


def test_editing_a_config_file_rolls_the_pods() -> None:
    def checksum(files: dict[str, str]) -> str:
        template = only(rendered(billing(configFiles=files)), "Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/config"])

    first = checksum({"billing.yaml": "currency: EUR\n"})
    assert first == checksum({"billing.yaml": "currency: EUR\n"})
    assert first != checksum({"billing.yaml": "currency: USD\n"})


def test_extra_env_and_args_reach_the_container() -> None:
    objects = rendered(
        billing(
            extraEnv=[{"name": "LOG_FORMAT", "value": "json"}, {"name": "WORKERS", "value": "4"}],
            extraArgs=["--strict", "--timeout=30s"],
        )
    )
    c = container(objects)
    assert c["args"] == ["--strict", "--timeout=30s"]
    assert c["env"][-2:] == [
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "WORKERS", "value": "4"},
    ]


def test_defaults_render_none_of_the_runtime_extras() -> None:
    objects = render("mcp-server")
    c = container(objects)
    assert "args" not in c
    assert "ConfigMap" not in {o["kind"] for o in objects}
    assert set(env_map(c)) == {
        "MCP_SERVER_NAME",
        "MCP_LISTEN_ADDR",
        "MCP_PATH",
        "MCP_TOOLS",
        "MCP_BEARER_TOKEN_DIR",
    }
    assert [v["name"] for v in pod_spec(objects)["volumes"]] == ["tmp", "platform-token"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"backends": [BILLING_API, {**QUEUE, "name": "billing-api"}]},
            'backends[1].name: "billing-api" is listed twice',
        ),
        (
            {"backendCredentials": [{"backend": "ledger", "secretName": "s"}]},
            'backendCredentials[0].backend: "ledger" is not one of backends[].name',
        ),
        (
            {
                "backendCredentials": [
                    {"backend": "billing-api", "secretName": "s-1"},
                    {"backend": "billing-api", "secretName": "s-2"},
                ]
            },
            'backendCredentials[1].backend: "billing-api" has one credential already',
        ),
        (
            {
                "backendCredentials": [
                    {"backend": "billing-api", "secretName": "shared"},
                    {"backend": "queue", "secretName": "shared"},
                ]
            },
            'backendCredentials[1].secretName: "shared" already holds another credential',
        ),
        (
            {"backendCredentials": [{"backend": "queue", "secretName": "mcp-server-billing-tls"}]},
            'backendCredentials[0].secretName: "mcp-server-billing-tls" already holds another',
        ),
        (
            {"toolCredentials": [{"tool": "get_invoice", "role": "r", "secretName": "s"}]},
            "toolCredentials: database roles need a database; set database.host",
        ),
    ],
)
def test_credentials_that_would_be_shared_or_orphaned_are_refused(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(HelmFailed) as failed:
        rendered(billing(**overrides))
    assert message in failed.value.stderr
