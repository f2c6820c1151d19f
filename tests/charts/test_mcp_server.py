"""mcp-server: a private server reachable only through a ClusterIP Service, one credential per tool."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra.pure import naming

from .helm_render import HelmFailed, Manifest, only, render
from .values_sets import DIGEST, INVENTORY, NAMESPACE, TICKETS, mcp_server_values

pytestmark = pytest.mark.helm

RELEASE = naming.mcp_release(TICKETS)


@cache
def _realistic() -> tuple[Manifest, ...]:
    return tuple(render("mcp-server", mcp_server_values(), RELEASE, NAMESPACE))


def realistic() -> list[Manifest]:
    return list(_realistic())


CREDENTIALS_DIR = "/var/run/secrets/agent-perimeter/database"
TOKEN_DIR = "/var/run/secrets/platform"
CA_DIR = "/etc/agent-perimeter/database-ca"
TLS_DIR = "/etc/mcp-server/tls"
CONFIG_DIR = "/etc/mcp-server/config"


def container(objects: list[Manifest]) -> dict[str, Any]:
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["mcp-server"]
    return spec["containers"][0]


def env_map(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_service_is_cluster_ip_on_the_server_port() -> None:
    objects = realistic()
    service = only(objects, "Service")
    assert service["metadata"]["name"] == RELEASE
    assert service["spec"]["type"] == "ClusterIP"
    assert not {"externalIPs", "loadBalancerIP", "externalName"} & set(service["spec"])
    (port,) = service["spec"]["ports"]
    assert "nodePort" not in port
    assert (port["port"], port["targetPort"], port["protocol"]) == (TICKETS.port, "https", "TCP")
    named = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    assert named == {"https": TICKETS.port}
    plain = only(render("mcp-server"), "Service")["spec"]["ports"][0]
    assert (plain["name"], plain["targetPort"]) == ("http", "http"), "without tls.secretName"


def test_environment_describes_server_and_database() -> None:
    env = env_map(container(realistic()))
    assert env == {
        "MCP_SERVER_NAME": "tickets",
        "MCP_LISTEN_ADDR": ":8080",
        "MCP_PATH": "/mcp",
        "MCP_TOOLS": "get_ticket,export_ticket",
        "DATABASE_HOST": "10.20.0.15",
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "support",
        "DATABASE_SSLMODE": "require",
        "MCP_TLS_CERT_FILE": f"{TLS_DIR}/tls.crt",
        "MCP_TLS_KEY_FILE": f"{TLS_DIR}/tls.key",
        "MCP_CONFIG_DIR": CONFIG_DIR,
        "MCP_DATABASE_CREDENTIALS_DIR": CREDENTIALS_DIR,
        "MCP_BEARER_TOKEN_DIR": TOKEN_DIR,
    }, "no credential may be an environment variable (CKV_K8S_35)"


def _volume_at(objects: list[Manifest], path: str) -> dict[str, Any]:
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in container(objects)["volumeMounts"]}
    assert mounts[path]["readOnly"] is True
    return next(v for v in spec["volumes"] if v["name"] == mounts[path]["name"])


def test_each_tool_reads_only_its_own_secret_as_files() -> None:
    volume = _volume_at(realistic(), CREDENTIALS_DIR)
    assert volume["projected"]["defaultMode"] == 0o440
    sources = [source["secret"] for source in volume["projected"]["sources"]]
    assert sources == [
        {
            "name": naming.tool_secret_name(TICKETS, tool, 0),
            "items": [
                {"key": "username", "path": f"{tool.name}/username"},
                {"key": "password", "path": f"{tool.name}/password"},
            ],
        }
        for tool in TICKETS.tools
    ]


def test_bearer_tokens_come_from_the_platform_token_secret_as_files() -> None:
    """Every key becomes a file the server accepts: `token`, and mid-rotation `previous-token`."""
    secret = _volume_at(realistic(), TOKEN_DIR)["secret"]
    assert secret == {
        "secretName": naming.platform_token_secret_name(TICKETS, 0),
        "defaultMode": 0o440,
    }


def test_a_database_ca_is_mounted_only_when_configured() -> None:
    assert "DATABASE_SSLROOTCERT" not in env_map(container(realistic()))
    values = mcp_server_values(TICKETS)
    values["database"] = {
        **values["database"],
        "sslmode": "verify-full",
        "caConfigMap": "database-ca-support",
    }
    objects = render("mcp-server", values, RELEASE)
    assert env_map(container(objects))["DATABASE_SSLROOTCERT"] == f"{CA_DIR}/ca.crt"
    assert _volume_at(objects, CA_DIR)["configMap"] == {
        "name": "database-ca-support",
        "defaultMode": 0o444,
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }


def test_default_secret_name_follows_the_naming_contract() -> None:
    """With no platformToken value the chart expects the Secret the program creates."""
    values = mcp_server_values(INVENTORY)
    del values["platformToken"]
    objects = render("mcp-server", values, naming.mcp_release(INVENTORY))
    assert _volume_at(objects, TOKEN_DIR)["secret"]["secretName"] == (
        naming.platform_token_secret_name(INVENTORY, 0).removesuffix("-r0")
    )  # used alone, the chart has no rotation epoch to name


def test_database_roles_are_recorded_for_review() -> None:
    annotations = only(realistic(), "Deployment")["metadata"]["annotations"]
    assert json.loads(annotations["agent-perimeter.io/database-roles"]) == {
        t.name: naming.tool_role(TICKETS, t) for t in TICKETS.tools
    }


def test_image_reference_is_pinned_when_a_digest_is_given() -> None:
    assert container(realistic())["image"] == f"ghcr.io/example/mcp-tickets:1.4.2@{DIGEST}"
    digest_only = {
        "image": {"repository": "registry.example.com/mcp/x", "tag": "", "digest": DIGEST}
    }
    assert container(render("mcp-server", digest_only))["image"] == (
        f"registry.example.com/mcp/x@{DIGEST}"
    )


def test_replicas_probes_and_disruption_budget_follow_values() -> None:
    objects = realistic()
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == TICKETS.replicas
    c = container(objects)
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}
    assert only(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    without = render("mcp-server", {"podDisruptionBudget": {"enabled": False}})
    assert "PodDisruptionBudget" not in {o["kind"] for o in without}


def test_writable_tmp_is_the_only_writable_path() -> None:
    objects = realistic()
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    writable = [m for m in container(objects)["volumeMounts"] if not m.get("readOnly")]
    assert writable == [{"name": "tmp", "mountPath": "/tmp"}]
    assert spec["volumes"][0] == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
    assert all({"projected", "secret", "configMap"} & set(v) for v in spec["volumes"][1:])


@pytest.mark.parametrize(
    ("release", "override", "expected"),
    [
        ("mcp-server-tickets", "", "mcp-server-tickets"),
        ("tickets", "", "tickets-mcp-server"),
        ("mcp-server-tickets", "tickets-api", "tickets-api"),
    ],
)
def test_fullname_keeps_release_names_containing_the_chart(
    release: str, override: str, expected: str
) -> None:
    objects = render("mcp-server", {"fullnameOverride": override}, release)
    assert {o["metadata"]["name"] for o in objects} == {expected}
    selector = only(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert selector == naming.selector_labels("mcp-server", release)


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (
            [
                {"tool": "get_ticket", "role": "r_a", "secretName": "s-a"},
                {"tool": "get_ticket", "role": "r_b", "secretName": "s-b"},
            ],
            'toolCredentials[1].tool: "get_ticket" is listed twice',
        ),
        (
            [
                {"tool": "get_ticket", "role": "r_a", "secretName": "s-a"},
                {"tool": "export_ticket", "role": "r_a", "secretName": "s-b"},
            ],
            'toolCredentials[1].role: "r_a"',
        ),
        (
            [
                {"tool": "get_ticket", "role": "r_a", "secretName": "s-a"},
                {"tool": "export_ticket", "role": "r_b", "secretName": "s-a"},
            ],
            'toolCredentials[1].secretName: "s-a" already holds the credential of tool "get_ticket"',
        ),
    ],
)
def test_tools_never_share_a_credential(credentials: list[dict[str, str]], message: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        render("mcp-server", {"toolCredentials": credentials})
    assert message in failed.value.stderr
