"""Both sides held together: NetworkPolicies select the pods the charts actually render.

Renders each shipped environment exactly as `python -m infra render` does (the
program under mocks, then `helm template` with the program's values) and
checks the rendered objects, so a renamed label in a chart or a typo in a
policy shows up here rather than as an open or a dead workload in a cluster.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.offline.mocked import render_environment, synthesize
from infra.pure.config import PerimeterConfig, load
from tests.charts.pod_checks import hardening_violations, pod_spec, restricted_violations
from tests.conftest import REPO_ROOT, SHIPPED_STACKS

Manifest = dict[str, Any]


@pytest.fixture(scope="module", params=SHIPPED_STACKS)
def rendered(request: pytest.FixtureRequest) -> tuple[PerimeterConfig, list[Manifest]]:
    config = load(stack=request.param)
    return config, render_environment(config)


def _pods(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    """Workload name -> the labels its pods carry."""
    return {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if pod_spec(m) is not None
    }


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "the program only writes matchLabels"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _policies(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == "NetworkPolicy"]


def test_each_workload_policy_selects_exactly_its_workload(rendered: tuple) -> None:
    _, manifests = rendered
    pods = _pods(manifests)
    for policy in _policies(manifests):
        name = policy["metadata"]["name"]
        selected = [
            w for w, labels in pods.items() if _selects(policy["spec"]["podSelector"], labels)
        ]
        if name in ("default-deny-all", "allow-dns-egress"):
            assert selected == list(pods), f"{name} must cover every pod"
        elif name.startswith("role-provisioner-"):
            assert len(selected) == 1 and selected[0].startswith(name + "-"), (name, selected)
        else:
            assert selected == [name], f"{name} selects {selected}"


def test_every_pod_peer_in_a_policy_matches_a_rendered_pod(rendered: tuple) -> None:
    _, manifests = rendered
    pods = _pods(manifests)
    for policy in _policies(manifests):
        spec = policy["spec"]
        rules = [*spec.get("ingress", []), *spec.get("egress", [])]
        for rule in rules:
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    matches = [w for w, lbl in pods.items() if _selects(peer["podSelector"], lbl)]
                    assert matches, f"{policy['metadata']['name']}: {peer} matches no pod"


def test_no_pod_is_left_without_its_own_policy(rendered: tuple) -> None:
    _, manifests = rendered
    specific = [p for p in _policies(manifests) if p["spec"]["podSelector"].get("matchLabels")]
    for workload, labels in _pods(manifests).items():
        covering = [p for p in specific if _selects(p["spec"]["podSelector"], labels)]
        assert len(covering) == 1, f"{workload} is covered by {len(covering)} workload policies"
        assert covering[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_every_pod_is_restricted_and_hardened(rendered: tuple) -> None:
    _, manifests = rendered
    for manifest in manifests:
        spec = pod_spec(manifest)
        if spec is None:
            continue
        problems = restricted_violations(spec) + [
            p
            for p in hardening_violations(spec)
            # a run-to-completion Job has no probes to offer
            if not (manifest["kind"] == "Job" and "Probe" in p)
        ]
        assert not problems, f"{manifest['kind']}/{manifest['metadata']['name']}: {problems}"


def test_tunnel_routes_and_allowed_ips_come_from_the_servers(rendered: tuple) -> None:
    config, manifests = rendered
    tunnel_config = next(
        yaml.safe_load(m["data"]["config.yaml"])
        for m in manifests
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "mcp-tunnel-config"
    )
    assert tunnel_config["tunnel_domain"] == config.tunnel_domain
    assert set(tunnel_config["routes"]) == {s.route_name for s in config.mcp_servers}
    for server in config.mcp_servers:
        upstream = tunnel_config["routes"][server.route_name]
        assert upstream == (
            f"https://mcp-server-{server.name}.{config.namespace}.svc.cluster.local:{server.port}"
        )
    assert tunnel_config["upstream"]["allowed_ips"] == config.cluster.service_cidrs
    assert tunnel_config["upstream"]["disable_ip_validation"] is False


def _mounts(workload: Manifest, container: str | None = None) -> dict[str, str]:
    """mount path -> the ConfigMap or Secret behind it, for one container (or all)."""
    spec = workload["spec"]["template"]["spec"]
    sources = {}
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            sources[volume["name"]] = f"Secret/{volume['secret']['secretName']}"
        elif "configMap" in volume:
            sources[volume["name"]] = f"ConfigMap/{volume['configMap']['name']}"
    return {
        mount["mountPath"]: sources.get(mount["name"], "")
        for c in spec["containers"]
        if container is None or c["name"] == container
        for mount in c.get("volumeMounts", [])
    }


def _named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def _issued(manifests: list[Manifest], kind: str, base: str) -> Manifest:
    """The one object holding a certificate, named `<base>-<digest of the certificate>`."""
    (found,) = [
        m
        for m in manifests
        if m["kind"] == kind and re.fullmatch(rf"{base}-[0-9a-f]{{10}}", m["metadata"]["name"])
    ]
    return found


def test_every_route_is_https_under_the_managed_ca_only(rendered: tuple) -> None:
    """The proxy trusts the program's CA and nothing else; each server serves its own
    certificate, read by it alone."""
    config, manifests = rendered
    tunnel_config = yaml.safe_load(
        _named(manifests, "ConfigMap", "mcp-tunnel-config")["data"]["config.yaml"]
    )
    tls = tunnel_config["upstream"]["tls"]
    assert tls["include_system_cas"] is False
    ca_dir = tls["ca_file"].rsplit("/", 1)[0]
    proxy_mounts = _mounts(_named(manifests, "Deployment", "mcp-tunnel"), "proxy")
    ca = _issued(manifests, "ConfigMap", "mcp-upstream-ca")
    assert proxy_mounts[ca_dir] == f"ConfigMap/{ca['metadata']['name']}"
    assert set(ca["data"]) == {tls["ca_file"].rsplit("/", 1)[1]}
    assert all(u.startswith("https://") for u in tunnel_config["routes"].values())
    for server in config.mcp_servers:
        deployment = _named(manifests, "Deployment", f"mcp-server-{server.name}")
        secret = _issued(manifests, "Secret", f"mcp-server-{server.name}-tls")
        assert f"Secret/{secret['metadata']['name']}" in _mounts(deployment).values()
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
        assert secret["type"] == "kubernetes.io/tls"
    readers = [
        m["metadata"]["name"]
        for m in manifests
        if "template" in m.get("spec", {})
        for source in _mounts(m).values()
        if re.fullmatch(r"Secret/mcp-server-[a-z0-9-]+-tls-[0-9a-f]{10}", source)
    ]
    assert sorted(readers) == sorted(f"mcp-server-{s.name}" for s in config.mcp_servers)


def test_backends_reach_their_server_as_files_and_nothing_else(rendered: tuple) -> None:
    config, manifests = rendered
    for server in config.mcp_servers:
        deployment = _named(manifests, "Deployment", f"mcp-server-{server.name}")
        mounts = _mounts(deployment)
        env = {
            e["name"]: e
            for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
        }
        for backend in server.credential_backends:
            base = f"mcp-server-{server.name}-backend-{backend.name}"
            secret = f"Secret/{_issued(manifests, 'Secret', base)['metadata']['name']}"
            assert mounts[f"/var/run/secrets/mcp-backends/{backend.name}"] == secret
            readers = [
                m["metadata"]["name"]
                for m in manifests
                if "template" in m.get("spec", {}) and secret in _mounts(m).values()
            ]
            assert readers == [f"mcp-server-{server.name}"]
        assert not [
            e
            for e in env.values()
            if "secretKeyRef" in e.get("valueFrom", {})
            and "-backend-" in e["valueFrom"]["secretKeyRef"]["name"]
        ]
        for name, value in server.env.items():
            assert env[name]["value"] == value
        if server.config_files:
            assert mounts["/etc/mcp-server/config"] == f"ConfigMap/mcp-server-{server.name}-config"
            files = _named(manifests, "ConfigMap", f"mcp-server-{server.name}-config")["data"]
            assert files == server.config_files
        policy = _named(manifests, "NetworkPolicy", f"mcp-server-{server.name}")
        allowed = {
            (peer["ipBlock"]["cidr"], port["port"])
            for rule in policy["spec"]["egress"]
            for peer in rule["to"]
            for port in rule["ports"]
        }
        expected = {(c, p) for b in server.backends for c in b.effective_cidrs for p in b.ports}
        if server.database:
            database = config.databases[server.database]
            expected |= {(c, database.port) for c in database.cidrs}
        assert allowed == expected


def test_only_cluster_ip_services_and_only_for_mcp_servers(rendered: tuple) -> None:
    config, manifests = rendered
    services = [m for m in manifests if m["kind"] == "Service"]
    assert sorted(s["metadata"]["name"] for s in services) == sorted(
        f"mcp-server-{s.name}" for s in config.mcp_servers
    )
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services)


def test_no_secret_value_is_written(tmp_path: Path) -> None:
    config = load(stack="dev")
    fakes = [r.name for r in synthesize(config).resources if r.type.startswith("random:")]
    assert fakes
    out = tmp_path / "dev"
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", "dev", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    text = "\n".join(p.read_text() for p in out.rglob("*.yaml")) + proc.stdout
    # The offline stand-ins for generated and configured secrets must never reach a file.
    from infra.offline.mocked import _fake

    for name in fakes:
        assert _fake(name, 24).hex() not in text
        assert _fake(name, 16).hex() not in text
    assert "<secret:" not in text
    assert "SCRAM-SHA-256$" not in text
    secrets = [yaml.safe_load(p.read_text()) for p in out.rglob("*-secret-*.yaml")]
    assert secrets and all(
        v.startswith("<redacted:") for s in secrets for v in s["stringData"].values()
    )
    assert "objects written" in proc.stdout
