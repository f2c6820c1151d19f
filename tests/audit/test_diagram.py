"""The diagram stays legible as servers are added: sorted, DNS as one note, the call path drawn."""

from __future__ import annotations

import re

import pytest

from benchmarks.bench_check import environment
from infra.offline.audit import Audit
from infra.offline.audit.diagram import PATH, build_graph
from infra.offline.commands.audit import audit_source
from infra.offline.commands.source import source_of


@pytest.fixture(scope="module")
def audit() -> Audit:
    return audit_source(source_of("large", environment(12, 2)), policies=False)


def test_servers_are_declared_in_name_order(audit: Audit) -> None:
    source = build_graph(audit).source
    servers = re.findall(r"Deployment/mcp-server-(svc\d+)</b>", source)
    assert servers == sorted(servers) and len(servers) == 12


def test_dns_is_one_note_and_no_edge(audit: Audit) -> None:
    source = build_graph(audit).source
    assert source.count("k8s-app=kube-dns") == 1
    assert "DNS: 15 workload(s) may ask" in source
    assert not re.search(r"-> dns\b", source)


def test_the_call_path_runs_platform_to_tunnel_edge_to_tunnel_to_each_server(audit: Audit) -> None:
    graph = build_graph(audit)
    source = graph.source
    edge = re.search(r'(x\d+) \[label="tunnel edge\s198\.41\.192\.0/19', source)
    assert edge, "the tunnel edge is one node carrying its ranges"
    edge_id = edge.group(1)
    tunnel_id = re.search(r"(w\d+) \[label=<<table[^\n]*Deployment/mcp-tunnel<", source).group(1)  # type: ignore[union-attr]
    assert re.search(rf"platform -> {edge_id} \[[^\]]*color=\"{PATH}\"", source)
    assert re.search(rf"{edge_id} -> {tunnel_id} \[[^\]]*color=\"{PATH}\"", source)
    calls = re.findall(rf"{tunnel_id} -> w\d+ \[label=\"TCP/8080\" color=\"{PATH}\"", source)
    assert len(calls) == 12
