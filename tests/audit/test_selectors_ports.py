"""Label selectors and port sets, the two building blocks of NetworkPolicy reading."""

from __future__ import annotations

import pytest

from infra.offline.audit.ports import Ports
from infra.offline.audit.selectors import Selector
from infra.offline.manifests import ManifestError


def test_match_labels_and_match_expressions_must_all_hold() -> None:
    sel = Selector.parse(
        {
            "matchLabels": {"app": "db"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["data", "cache"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "owner", "operator": "NotIn", "values": ["guest"]},
            ],
        }
    )
    good = {"app": "db", "tier": "cache", "zone": "a"}
    assert sel.matches(good)
    assert sel.matches({**good, "owner": "ops"})
    assert not sel.matches({**good, "owner": "guest"})
    assert not sel.matches({**good, "canary": "yes"})
    assert not sel.matches({**good, "tier": "web"})
    assert not sel.matches({k: v for k, v in good.items() if k != "zone"})
    assert not sel.matches({**good, "app": "web"})
    assert sel.describe() == "app=db, tier in (cache, data), !canary, zone, owner notin (guest)"


def test_empty_selector_matches_everything() -> None:
    assert Selector.parse({}).matches({"anything": "x"})
    assert Selector.parse(None).empty


def test_unknown_operator_is_an_input_error() -> None:
    with pytest.raises(ManifestError, match="Equals"):
        Selector.parse({"matchExpressions": [{"key": "a", "operator": "Equals"}]})


def test_namespace_selector_without_positive_constraint_is_unconstrained() -> None:
    assert Selector.parse({}).unconstrained()
    excluding = {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["x"]}
    assert Selector.parse({"matchExpressions": [excluding]}).unconstrained()
    assert not Selector.parse({"matchLabels": {"team": "ops"}}).unconstrained()


def test_absent_ports_mean_every_port_of_every_protocol() -> None:
    assert Ports.parse(None).is_all
    assert Ports.parse([]).describe() == ["all"]


def test_ports_default_to_tcp_and_end_port_makes_a_range() -> None:
    ports = Ports.parse(
        [{"port": 53}, {"protocol": "UDP", "port": 53}, {"port": 30000, "endPort": 30010}]
    )
    assert ports.describe() == ["TCP/53", "TCP/30000-30010", "UDP/53"]


def test_a_protocol_without_port_is_every_port_of_it() -> None:
    assert Ports.parse([{"protocol": "UDP"}]).describe() == ["UDP/all"]


def test_intersection_needs_the_same_protocol() -> None:
    tcp = Ports.parse([{"protocol": "TCP", "port": 5353}])
    udp = Ports.parse([{"protocol": "UDP", "port": 5353}])
    assert not tcp.intersect(udp)
    wide = Ports.parse([{"protocol": "TCP", "port": 8000, "endPort": 9000}])
    assert wide.intersect(Ports.parse([{"port": 8080}])).describe() == ["TCP/8080"]
    assert Ports.all().intersect(udp) == udp


def test_named_ports_resolve_on_the_target_pod_or_allow_nothing() -> None:
    named = Ports.parse([{"port": "http"}, {"port": "missing"}])
    assert named.describe() == ["TCP/http", "TCP/missing"]
    resolved = named.resolve({("TCP", "http"): 8080})
    assert resolved.describe() == ["TCP/8080"]
    assert not Ports.parse([{"port": "missing"}]).resolve({})


def test_union_merges_adjacent_ranges() -> None:
    a = Ports.parse([{"port": 80, "endPort": 90}])
    b = Ports.parse([{"port": 91, "endPort": 100}])
    assert a.union(b).describe() == ["TCP/80-100"]


def test_bad_protocol_is_an_input_error() -> None:
    with pytest.raises(ManifestError, match="ICMP"):
        Ports.parse([{"protocol": "ICMP", "port": 1}])
