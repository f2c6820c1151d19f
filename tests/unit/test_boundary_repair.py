"""Which NetworkPolicies the program re-applies because someone changed them by hand."""

from __future__ import annotations

import copy

from infra.engine.boundary_repair import RESTORED, drifted, restore_tokens
from infra.pure.config import PerimeterConfig
from infra.pure.network import network_policies


def live_copy(declared: list[dict], version: str = "41") -> list[dict]:
    """As the API server returns them: defaults filled in, server metadata added."""
    live = copy.deepcopy(declared)
    for m in live:
        m["metadata"]["resourceVersion"] = version
        for rule in m["spec"].get("egress", []):
            for port in rule.get("ports", []):
                port.setdefault("protocol", "TCP")
    return live


def test_an_unchanged_boundary_restores_nothing(dev_config: PerimeterConfig) -> None:
    declared = network_policies(dev_config)
    assert restore_tokens(declared, live_copy(declared)) == {}
    assert restore_tokens(declared, []) == {}


def test_a_hand_added_egress_rule_is_restored(dev_config: PerimeterConfig) -> None:
    declared = network_policies(dev_config)
    live = live_copy(declared, version="977")
    target = next(m for m in live if m["spec"].get("egress"))
    target["spec"]["egress"].append({"to": [{"namespaceSelector": {}}]})
    name = target["metadata"]["name"]
    assert drifted(declared, live) == [name]
    assert restore_tokens(declared, live) == {name: "drift undone at resourceVersion 977"}


def test_after_a_restore_the_annotation_keeps_its_value(dev_config: PerimeterConfig) -> None:
    """Echoing the live value means the run after a restore changes nothing."""
    declared = network_policies(dev_config)
    live = live_copy(declared)
    name = live[0]["metadata"]["name"]
    live[0]["metadata"]["annotations"] = {RESTORED: "drift undone at resourceVersion 977"}
    assert drifted(declared, live) == []
    assert restore_tokens(declared, live) == {name: "drift undone at resourceVersion 977"}
