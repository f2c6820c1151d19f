"""NetworkPolicy semantics on the trap fixtures in fixtures/network/ (one rule per file)."""

from __future__ import annotations

import re

import pytest

from infra.offline.audit import audit_manifests
from infra.offline.manifests import ManifestError, load_dir
from tests.audit.helpers import NETWORK, flag_codes, flows, peers, scenario

ANYTHING = "anything (every pod of every namespace, every address)"


def test_a_pod_no_policy_selects_is_open_both_ways() -> None:
    audit = scenario("no-policy")
    web = audit.network.workloads["Deployment/shop/web"]
    assert not web.ingress.isolated and not web.egress.isolated
    assert peers(audit, "Deployment/shop/web", "ingress") == {ANYTHING: "all"}
    assert flag_codes(audit, "Deployment/shop/web") == {"ingress-open", "egress-open"}
    assert flows(audit)[("Deployment/shop/worker", "Deployment/shop/web")] == "all"


def test_an_empty_pod_selector_selects_every_pod_of_its_namespace_only() -> None:
    audit = scenario("empty-selector")
    for ref in ("Deployment/locked/a", "StatefulSet/locked/b"):
        net = audit.network.workloads[ref]
        assert net.ingress.isolated and net.egress.isolated
        assert not net.ingress.allowances and not net.egress.allowances
    assert audit.network.policy_selects["NetworkPolicy/locked/default-deny"] == [
        "Deployment/locked/a",
        "StatefulSet/locked/b",
    ]
    other = audit.network.workloads["Deployment/other/c"]
    assert not other.ingress.isolated
    # c may send anywhere, but the locked pods accept nothing: no flow at all.
    assert flows(audit) == {}


def test_a_policy_selecting_nothing_protects_nothing() -> None:
    audit = scenario("selects-nothing")
    assert audit.network.policy_selects["NetworkPolicy/shop/deny-web"] == []
    assert "policy-selects-nothing" in flag_codes(audit, "NetworkPolicy/shop/deny-web")
    assert flag_codes(audit, "Deployment/shop/web") == {"ingress-open", "egress-open"}


def test_a_second_policy_widens_the_first() -> None:
    audit = scenario("widening")
    api = "Deployment/shop/api"
    assert peers(audit, api, "ingress") == {
        "Deployment/shop/frontend": "TCP/8080",
        "all pods in every namespace": "TCP/9090",
    }
    assert "ingress-all-namespaces" in flag_codes(audit, api)
    found = flows(audit)
    assert found[("Deployment/shop/frontend", api)] == "TCP/8080, TCP/9090"
    assert found[("Deployment/shop/batch", api)] == "TCP/9090"
    flag = next(f for f in audit.flags if f.code == "ingress-all-namespaces")
    assert "api-metrics" in flag.message and "TCP/9090" in flag.message


def test_namespace_and_pod_selector_in_one_peer_mean_both() -> None:
    audit = scenario("and-or")
    sources = {s for s, t in flows(audit) if t == "Deployment/shop/api-and"}
    assert sources == {"Deployment/ops/monitor"}
    # Namespaces labelled team=ops that the bundle does not hold are still peers.
    assert "pods app=monitor in namespaces labelled team=ops" in peers(
        audit, "Deployment/shop/api-and", "ingress"
    )


def test_namespace_and_pod_selector_as_two_peers_mean_either() -> None:
    audit = scenario("and-or")
    sources = {s for s, t in flows(audit) if t == "Deployment/shop/api-or"}
    assert sources == {"Deployment/ops/monitor", "Deployment/ops/backup", "Deployment/shop/monitor"}


def test_ports_and_protocols_must_agree_on_both_sides() -> None:
    audit = scenario("ports-protocols")
    server, client = "Deployment/lab/server", "Deployment/lab/client"
    # Named port `http` resolves to 8080 on the server; `nosuchname` allows nothing.
    assert peers(audit, server, "ingress") == {client: "TCP/8080, TCP/30000-30010, UDP/5353"}
    # TCP/9100 and SCTP/30001 are allowed out by the client but not in by the server.
    assert flows(audit) == {(client, server): "TCP/8080, TCP/30005, UDP/5353"}


def test_ip_block_with_except_is_still_the_whole_internet() -> None:
    audit = scenario("ipblock-except")
    fetcher = "Deployment/lab/fetcher"
    assert peers(audit, fetcher, "egress") == {
        "0.0.0.0/0 except 10.0.0.0/8, 169.254.169.254/32": "TCP/443",
        "10.20.0.0/16 except 10.20.5.0/24": "TCP/5432",
    }
    internet = [f for f in audit.flags if f.code == "egress-internet"]
    assert len(internet) == 1 and "0.0.0.0/0 except" in internet[0].message
    assert flag_codes(audit, fetcher) == {"egress-internet"}


def test_dns_only_done_right_reaches_kube_dns_and_nothing_else() -> None:
    audit = scenario("dns-only")
    good = "Deployment/lab/good"
    assert peers(audit, good, "egress") == {
        "pods k8s-app=kube-dns in namespace kube-system": "TCP/53, UDP/53"
    }
    assert flag_codes(audit, good) == set()


def test_dns_only_as_ports_without_destinations_reaches_everything_on_53() -> None:
    audit = scenario("dns-only")
    trap = "Deployment/lab/trap"
    assert peers(audit, trap, "egress") == {ANYTHING: "TCP/53, UDP/53"}
    assert flag_codes(audit, trap) == {"egress-internet", "egress-all-namespaces"}


def test_policy_types_default_and_ignored_rules() -> None:
    audit = scenario("policy-types")
    one = audit.network.workloads["Deployment/lab/one"]
    two = audit.network.workloads["Deployment/lab/two"]
    # No policyTypes and only ingress rules: ingress isolated, egress untouched.
    assert one.ingress.isolated and not one.egress.isolated
    # policyTypes [Egress]: its ingress rules are ignored, ingress stays open.
    assert two.egress.isolated and not two.ingress.isolated
    assert flows(audit) == {
        ("Deployment/lab/two", "Deployment/lab/one"): "all",
        ("Deployment/lab/one", "Deployment/lab/two"): "all",
    }


def test_match_expressions_workload_kinds_and_unconstrained_namespaces() -> None:
    audit = scenario("selectors")
    db = "StatefulSet/lab/db"
    # The canary has canary=yes, which DoesNotExist excludes: no policy selects it.
    assert not audit.network.workloads["StatefulSet/lab/db-canary"].ingress.isolated
    ingress = peers(audit, db, "ingress")
    assert ingress["Pod/lab/admin"] == "all"  # role Exists, and not guest
    assert "Pod/lab/guest" not in ingress
    assert ingress["CronJob/lab/backup"] == "TCP/5432"  # jobTemplate labels
    assert ingress["pods app=backup in namespaces labelled env=test"] == "TCP/5432"
    every = "all pods in every namespace (kubernetes.io/metadata.name notin (lab))"
    assert ingress[every] == "TCP/9187"
    assert "ingress-all-namespaces" in flag_codes(audit, db)


def test_host_network_pods_are_outside_every_policy() -> None:
    audit = scenario("selectors")
    agent = "DaemonSet/lab/node-agent"
    assert "no-host-namespaces" in flag_codes(audit, agent)
    assert not audit.network.workloads[agent].ingress.isolated


def test_traffic_needs_egress_of_the_source_and_ingress_of_the_target() -> None:
    manifests = load_dir(NETWORK / "widening.yaml")
    frontend, api = "Deployment/shop/frontend", "Deployment/shop/api"
    assert (frontend, api) in flows(audit_manifests(manifests, policies=False))
    deny_egress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "frontend-no-egress", "namespace": "shop"},
        "spec": {"podSelector": {"matchLabels": {"app": "frontend"}}, "policyTypes": ["Egress"]},
    }
    audit = audit_manifests([*manifests, deny_egress], policies=False)
    assert peers(audit, api, "ingress")[frontend] == "TCP/8080"  # api still admits it
    assert (frontend, api) not in flows(audit)


def test_objects_without_namespace_land_in_the_default_namespace() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}},
    }
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    audit = audit_manifests([deployment, deny], default_namespace="team", policies=False)
    assert audit.network.workloads["Deployment/team/x"].ingress.isolated


def test_a_bad_cidr_is_an_input_error() -> None:
    bad = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad", "namespace": "a"},
        "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]},
    }
    with pytest.raises(ManifestError, match=re.escape("10.0.0.300/8")):
        audit_manifests([bad], policies=False)


def test_exposed_services_are_flagged() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "np", "namespace": "a"},
        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    audit = audit_manifests([svc], policies=False)
    assert flag_codes(audit, "Service/a/np") == {"service-cluster-ip-only"}
