"""mcp-server: a private server reachable only through a ClusterIP Service, one credential per tool."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra import naming

from .helm_render import HelmFailed, Manifest, only, render
from .values_sets import DIGEST, INVENTORY, NAMESPACE, TICKETS, mcp_server_values

pytestmark = pytest.mark.helm

RELEASE = naming.mcp_release(TICKETS)


@cache
def _realistic() -> tuple[Manifest, ...]:
    return tuple(render("mcp-server", mcp_server_values(), RELEASE, NAMESPACE))


def realistic() -> list[Manifest]:
    return list(_realistic())


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
    assert (port["port"], port["targetPort"], port["protocol"]) == (TICKETS.port, "http", "TCP")
    named = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    assert named == {"http": TICKETS.port}


def test_environment_describes_server_and_database() -> None:
    env = env_map(container(realistic()))
    assert {k: env[k] for k in env if not isinstance(env[k], dict)} == {
        "MCP_SERVER_NAME": "tickets",
        "MCP_LISTEN_ADDR": ":8080",
        "MCP_PATH": "/mcp",
        "DATABASE_HOST": "10.20.0.15",
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "support",
        "DATABASE_SSLMODE": "require",
    }


def test_each_tool_reads_only_its_own_secret() -> None:
    env = env_map(container(realistic()))
    for tool in TICKETS.tools:
        secret = naming.tool_secret_name(TICKETS, tool)
        suffix = tool.name.upper()
        assert env[f"DB_USER_{suffix}"] == {"secretKeyRef": {"name": secret, "key": "username"}}
        assert env[f"DB_PASSWORD_{suffix}"] == {"secretKeyRef": {"name": secret, "key": "password"}}
    referenced = {v["secretKeyRef"]["name"] for v in env.values() if isinstance(v, dict)}
    assert referenced == {naming.tool_secret_name(TICKETS, t) for t in TICKETS.tools} | {
        naming.platform_token_secret_name(TICKETS)
    }


def test_bearer_token_comes_from_the_platform_token_secret() -> None:
    env = env_map(container(realistic()))
    assert env["MCP_BEARER_TOKEN"] == {
        "secretKeyRef": {"name": naming.platform_token_secret_name(TICKETS), "key": "token"}
    }


def test_default_secret_name_follows_the_naming_contract() -> None:
    """With no platformToken value the chart expects the Secret the program creates."""
    values = mcp_server_values(INVENTORY)
    del values["platformToken"]
    env = env_map(container(render("mcp-server", values, naming.mcp_release(INVENTORY))))
    assert env["MCP_BEARER_TOKEN"]["secretKeyRef"]["name"] == naming.platform_token_secret_name(
        INVENTORY
    )


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
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert only(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    without = render("mcp-server", {"podDisruptionBudget": {"enabled": False}})
    assert "PodDisruptionBudget" not in {o["kind"] for o in without}


def test_writable_tmp_is_the_only_writable_path() -> None:
    objects = realistic()
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = container(objects)["volumeMounts"]
    assert [m for m in mounts if not m.get("readOnly")] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert [v for v in spec["volumes"] if "emptyDir" in v] == [
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
    ]


def test_platform_tokens_are_mounted_read_only_as_files() -> None:
    """The server accepts every token file there: the current one and, mid-rotation, the previous."""
    objects = realistic()
    spec = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert {
        "name": "platform-token",
        "mountPath": "/var/run/secrets/platform",
        "readOnly": True,
    } in (container(objects)["volumeMounts"])
    volume = next(v for v in spec["volumes"] if v["name"] == "platform-token")
    assert volume["secret"]["secretName"] == "mcp-server-tickets-platform-token"


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
