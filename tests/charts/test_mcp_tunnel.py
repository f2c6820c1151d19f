"""mcp-tunnel: one pod of proxy + cloudflared, no inbound anything, each secret in one container."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml

from infra.pure import naming

from .helm_render import HelmFailed, Manifest, only, render
from .values_sets import INVENTORY, NAMESPACE, TICKETS, TUNNEL, mcp_tunnel_values, service_url

pytestmark = pytest.mark.helm

RELEASE = naming.TUNNEL_RELEASE


@cache
def _realistic() -> tuple[Manifest, ...]:
    return tuple(render("mcp-tunnel", mcp_tunnel_values(), RELEASE, NAMESPACE))


def realistic() -> list[Manifest]:
    return list(_realistic())


def pod(objects: list[Manifest]) -> dict[str, Any]:
    return only(objects, "Deployment")["spec"]["template"]


def containers(objects: list[Manifest]) -> dict[str, dict[str, Any]]:
    found = {c["name"]: c for c in pod(objects)["spec"]["containers"]}
    assert list(found) == ["proxy", "cloudflared"]
    return found


UPSTREAM_CA_DIR = "/etc/mcp-proxy/upstream-ca"


def proxy_config(objects: list[Manifest]) -> dict[str, Any]:
    config_map = only(objects, "ConfigMap")
    assert config_map["metadata"]["name"] == f"{RELEASE}-config"
    assert set(config_map["data"]) == {"config.yaml"}
    return yaml.safe_load(config_map["data"]["config.yaml"])


def test_proxy_config_carries_routes_and_allowed_ips_as_given() -> None:
    values = mcp_tunnel_values()
    assert proxy_config(realistic()) == {
        "listen_addr": ":8443",
        "log_level": "info",
        "shutdown_timeout": "30s",
        "tunnel_domain": TUNNEL.domain,
        "tls": {
            "cert_file": "/etc/mcp-gateway/tls/tls.crt",
            "key_file": "/etc/mcp-gateway/tls/tls.key",
        },
        "routes": {"tickets": service_url(TICKETS), "inventory": service_url(INVENTORY)},
        "upstream": {
            "allowed_ips": values["upstream"]["allowedIps"],
            "disable_ip_validation": False,
            "tls": {"ca_file": f"{UPSTREAM_CA_DIR}/ca.crt", "include_system_cas": False},
        },
    }


def test_default_config_allows_only_private_ranges_and_validates_ips() -> None:
    config = proxy_config(render("mcp-tunnel"))
    assert config["routes"] == {}
    assert config["upstream"]["allowed_ips"] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert config["upstream"]["disable_ip_validation"] is False
    assert config["upstream"]["tls"] == {"include_system_cas": True}
    assert "upstream-ca" not in {v["name"] for v in pod(render("mcp-tunnel"))["spec"]["volumes"]}


def test_the_upstream_ca_is_the_only_ca_the_proxy_trusts() -> None:
    """Even when includeSystemCas says true: a public CA must not vouch for an MCP server."""
    values = mcp_tunnel_values()
    values["upstream"]["tls"] = {"caConfigMap": "team-ca", "includeSystemCas": True}
    objects = render("mcp-tunnel", values, RELEASE, NAMESPACE)
    assert proxy_config(objects)["upstream"]["tls"] == {
        "ca_file": f"{UPSTREAM_CA_DIR}/ca.crt",
        "include_system_cas": False,
    }
    volumes = {v["name"]: v for v in pod(objects)["spec"]["volumes"]}
    mounts = {n: c.get("volumeMounts") or [] for n, c in containers(objects).items()}
    (mount,) = [m for m in mounts["proxy"] if m["mountPath"] == UPSTREAM_CA_DIR]
    assert mount["readOnly"] is True
    assert volumes[mount["name"]] == {
        "name": mount["name"],
        "configMap": {
            "name": "team-ca",
            "defaultMode": 0o444,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        },
    }
    assert not [m for m in mounts["cloudflared"] if m["name"] == mount["name"]]


def test_config_file_and_tls_pair_land_where_the_proxy_reads_them() -> None:
    objects = realistic()
    spec = pod(objects)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in containers(objects)["proxy"]["volumeMounts"]}
    config = mounts["/etc/mcp-gateway/config.yaml"]
    assert config["subPath"] == "config.yaml" and config["readOnly"] is True
    assert volumes[config["name"]]["configMap"]["name"] == f"{RELEASE}-config"
    tls = mounts["/etc/mcp-gateway/tls"]
    assert tls["readOnly"] is True
    secret = volumes[tls["name"]]["secret"]
    assert secret["secretName"] == "mcp-tunnel-tls"
    assert {i["key"] for i in secret["items"]} == {"tls.crt", "tls.key"}


def _secrets_used(container: dict[str, Any], volumes: dict[str, Any]) -> set[str]:
    names = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }
    for mount in container.get("volumeMounts") or []:
        source = volumes[mount["name"]]
        if "secret" in source:
            names.add(source["secret"]["secretName"])
    return names


def test_each_secret_reaches_exactly_one_container() -> None:
    """cloudflared alone holds the tunnel token; the proxy alone holds the TLS key."""
    objects = realistic()
    volumes = {v["name"]: v for v in pod(objects)["spec"]["volumes"]}
    by_container = {n: _secrets_used(c, volumes) for n, c in containers(objects).items()}
    assert by_container == {
        "proxy": {naming.TUNNEL_TLS_SECRET},
        "cloudflared": {naming.tunnel_token_secret_name(0)},
    }
    cloudflared = containers(objects)["cloudflared"]
    assert "env" not in cloudflared, "the tunnel token is a file, never an environment variable"
    assert cloudflared["args"][-2:] == ["--token-file", "/etc/cloudflared/token/token"]
    mount = next(
        m for m in cloudflared["volumeMounts"] if m["mountPath"] == "/etc/cloudflared/token"
    )
    assert mount["readOnly"] is True
    assert volumes[mount["name"]]["secret"] == {
        "secretName": naming.tunnel_token_secret_name(0),
        "defaultMode": 0o440,
        "items": [{"key": "token", "path": "token"}],
    }


def test_default_secret_names_derive_from_the_release() -> None:
    objects = render("mcp-tunnel", {}, RELEASE)
    volumes = {v["name"]: v for v in pod(objects)["spec"]["volumes"]}
    by_container = {n: _secrets_used(c, volumes) for n, c in containers(objects).items()}
    assert by_container == {"proxy": {"mcp-tunnel-tls"}, "cloudflared": {"mcp-tunnel-token"}}


def test_cloudflared_runs_the_remotely_managed_tunnel() -> None:
    cloudflared = containers(realistic())["cloudflared"]
    assert cloudflared["args"] == [
        "tunnel",
        "--no-autoupdate",
        "--metrics",
        "0.0.0.0:2000",
        "run",
        "--token-file",
        "/etc/cloudflared/token/token",
    ]
    assert "command" not in cloudflared
    assert cloudflared["image"] == "docker.io/cloudflare/cloudflared:2026.10.0"


def test_probes_never_kill_a_reconnecting_tunnel() -> None:
    """Liveness asks "is the process up" (/healthcheck), patiently; readiness asks "connected"."""
    c = containers(realistic())
    live, ready = c["cloudflared"]["livenessProbe"], c["cloudflared"]["readinessProbe"]
    assert live["httpGet"] == {"path": "/healthcheck", "port": "metrics"}
    assert ready["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert live["failureThreshold"] * live["periodSeconds"] >= 120
    metrics = {p["name"]: p["containerPort"] for p in c["cloudflared"]["ports"]}
    assert metrics == {"metrics": 2000}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c["proxy"][probe]["tcpSocket"] == {"port": "https"}
    assert {p["name"]: p["containerPort"] for p in c["proxy"]["ports"]} == {"https": 8443}


def test_config_changes_roll_the_pods() -> None:
    before = pod(realistic())["metadata"]["annotations"]
    values = mcp_tunnel_values()
    values["routes"] = {"tickets": service_url(TICKETS)}
    after = pod(render("mcp-tunnel", values, RELEASE, NAMESPACE))["metadata"]["annotations"]
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/credentials"] == after["checksum/credentials"]
    relabelled = mcp_tunnel_values() | {"commonLabels": {"team": "platform"}}
    same = pod(render("mcp-tunnel", relabelled, RELEASE, NAMESPACE))["metadata"]["annotations"]
    assert same["checksum/config"] == before["checksum/config"]


def test_disruption_budget_only_with_more_than_one_replica() -> None:
    assert only(realistic(), "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    single = render("mcp-tunnel", {"replicaCount": 1}, RELEASE)
    assert sorted(o["kind"] for o in single) == ["ConfigMap", "Deployment", "ServiceAccount"]
    assert only(single, "Deployment")["spec"]["replicas"] == 1


def test_no_port_is_ever_exposed() -> None:
    for obj in realistic():
        assert obj["kind"] not in {"Service", "Ingress", "Route", "Gateway", "HTTPRoute"}


@pytest.mark.parametrize(
    ("values", "grace"),
    [
        ({}, 45),
        ({"proxy": {"shutdownTimeout": "90s"}}, 105),
        ({"proxy": {"shutdownTimeout": "2m"}}, 135),
        ({"proxy": {"shutdownTimeout": "500ms"}}, 45),
        ({"terminationGracePeriodSeconds": 300}, 300),
    ],
)
def test_termination_grace_outlasts_the_drain(values: dict[str, Any], grace: int) -> None:
    spec = pod(render("mcp-tunnel", values, RELEASE))["spec"]
    assert spec["terminationGracePeriodSeconds"] == grace


def test_a_grace_period_shorter_than_the_drain_is_refused() -> None:
    with pytest.raises(HelmFailed) as failed:
        render(
            "mcp-tunnel", {"proxy": {"shutdownTimeout": "60s"}, "terminationGracePeriodSeconds": 60}
        )
    assert "terminationGracePeriodSeconds: 60 must exceed the 60s" in failed.value.stderr


def test_tunnel_id_is_recorded_on_the_deployment() -> None:
    annotations = only(realistic(), "Deployment")["metadata"]["annotations"]
    assert annotations["agent-perimeter.io/tunnel-id"] == TUNNEL.id
