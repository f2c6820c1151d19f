"""The network matrix: NetworkPolicies read with Kubernetes semantics.

The rules that decide it (and that reviewers get wrong):
- policies are additive: a pod's allowed traffic in one direction is the union
  of every rule of every policy selecting it for that direction;
- a pod no policy selects for a direction is open in that direction;
- `podSelector: {}` selects every pod of the policy's namespace; a selector
  matching no pod makes the policy a no-op;
- in one peer, `namespaceSelector` AND `podSelector`; separate peers OR;
- a rule without `from`/`to` admits everything on its ports, and one without
  `ports` admits every port and protocol;
- `ipBlock` addresses are outside the cluster (pod traffic is judged by
  selectors only); `except` carves holes;
- traffic between two pods needs the source's egress and the target's ingress.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from infra.offline.audit.findings import INFO, Flag
from infra.offline.audit.inventory import Inventory, Workload
from infra.offline.audit.ports import NO_PORTS, Ports
from infra.offline.audit.selectors import NAMESPACE_NAME_LABEL, Selector
from infra.offline.manifests import ManifestError

INGRESS, EGRESS = "ingress", "egress"


@dataclass(frozen=True, order=True)
class Peer:
    """Who is on the other side of a rule: kind = workload | pods | cidr | any."""

    kind: str
    ref: str = ""  # workload ref, or the CIDR
    namespaces: str = ""  # pods peers: which namespaces, in words
    pods: str = ""  # pods peers: pod selector ("" = all pods)
    excepts: tuple[str, ...] = ()
    every_namespace: bool = False

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        """Workloads first, then pods elsewhere, then addresses: the order reviewers read."""
        order = ("workload", "pods", "cidr", "any").index(self.kind)
        return (order, self.ref, self.namespaces, self.pods)

    @property
    def internet(self) -> bool:
        if self.kind == "any":
            return True
        return self.kind == "cidr" and ipaddress.ip_network(self.ref, strict=False).prefixlen == 0

    @property
    def all_namespaces(self) -> bool:
        return self.kind == "any" or self.every_namespace

    def describe(self) -> str:
        if self.kind == "workload":
            return self.ref
        if self.kind == "any":
            return "anything (every pod of every namespace, every address)"
        if self.kind == "cidr":
            return self.ref + (f" except {', '.join(self.excepts)}" if self.excepts else "")
        who = f"pods {self.pods}" if self.pods else "all pods"
        return f"{who} in {self.namespaces}"


@dataclass(frozen=True)
class Allowance:
    """One peer a workload may exchange traffic with in one direction, and on which ports."""

    peer: Peer
    ports: Ports
    policies: tuple[str, ...]


@dataclass
class Direction:
    isolated: bool
    policies: tuple[str, ...]
    allowances: tuple[Allowance, ...]


@dataclass(frozen=True)
class Flow:
    """Traffic both sides allow: the source's egress and the target's ingress."""

    source: str
    target: str
    ports: Ports


@dataclass
class WorkloadNetwork:
    workload: Workload
    ingress: Direction
    egress: Direction
    services: list[str] = field(default_factory=list)


@dataclass
class NetworkMatrix:
    workloads: dict[str, WorkloadNetwork]
    flows: list[Flow]
    policy_selects: dict[str, list[str]]  # policy ref -> workloads it selects
    flags: list[Flag]


@dataclass(frozen=True)
class _Rule:
    policy: str
    members: frozenset[str]
    peers: tuple[Peer, ...]
    ports: Ports


def _namespace_words(sel: Selector) -> str:
    if sel.unconstrained():
        rest = sel.describe()
        return "every namespace" + (f" ({rest})" if rest else "")
    names = sel.pinned(NAMESPACE_NAME_LABEL)
    if names is not None and len(sel.requirements) == 1:
        return ("namespace " if len(names) == 1 else "namespaces ") + ", ".join(sorted(names))
    return f"namespaces labelled {sel.describe()}"


def _cidr(raw: object, where: str) -> str:
    try:
        return str(ipaddress.ip_network(str(raw), strict=False))
    except ValueError:
        raise ManifestError(f"{where}: {raw!r} is not a CIDR block") from None


class _Resolver:
    """Turns rule peers into in-set workloads (for flows) and peers to show (for reports)."""

    def __init__(self, inv: Inventory):
        self.namespaces = inv.namespaces
        self.all = frozenset(inv.workloads)
        self.by_namespace: dict[str, list[Workload]] = {}
        for w in inv.workloads.values():
            self.by_namespace.setdefault(w.namespace, []).append(w)

    def peers(
        self, raw: list[dict] | None, namespace: str, where: str
    ) -> tuple[frozenset[str], tuple[Peer, ...]]:
        """A rule's `from`/`to`: absent or empty admits everything."""
        if not raw:
            return self.all, (Peer("any"),)
        members: set[str] = set()
        shown: list[Peer] = []
        for element in raw:
            if "ipBlock" in element:
                shown.append(_ip_block(element["ipBlock"] or {}, where))
                continue
            matched, peers = self._selected(element, namespace, where)
            members.update(w.ref for w in matched)
            shown += peers
        return frozenset(members), tuple(shown)

    def _selected(
        self, element: dict, namespace: str, where: str
    ) -> tuple[list[Workload], list[Peer]]:
        """One selector peer; without namespaceSelector it means the policy's own namespace."""
        pod_sel = Selector.parse(element.get("podSelector"), where)
        if "namespaceSelector" not in element:
            matched = [w for w in self.by_namespace.get(namespace, []) if pod_sel.matches(w.labels)]
            return matched, [Peer("workload", w.ref) for w in matched]
        ns_sel = Selector.parse(element.get("namespaceSelector"), where)
        matched = [
            w
            for ns, labels in self.namespaces.items()
            if ns_sel.matches(labels)
            for w in self.by_namespace.get(ns, [])
            if pod_sel.matches(w.labels)
        ]
        everywhere = ns_sel.unconstrained()
        # Broad peers stay one line in reports; their in-set members still count for flows.
        shown = [] if everywhere else [Peer("workload", w.ref) for w in matched]
        pinned = ns_sel.pinned(NAMESPACE_NAME_LABEL)
        if pinned is None or not pinned <= self.namespaces.keys():
            words = _namespace_words(ns_sel)
            shown.append(
                Peer("pods", namespaces=words, pods=pod_sel.describe(), every_namespace=everywhere)
            )
        return matched, shown


def _ip_block(block: dict, where: str) -> Peer:
    excepts = tuple(_cidr(e, where) for e in block.get("except") or [])
    return Peer("cidr", _cidr(block.get("cidr"), where), excepts=excepts)


def policy_types(spec: dict) -> list[str]:
    """`policyTypes`, or its default: Ingress, plus Egress when the policy has egress rules."""
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


@dataclass
class _Side:
    """The policies selecting a workload for one direction, and their rules (additive)."""

    policies: list[str] = field(default_factory=list)
    rules: list[_Rule] = field(default_factory=list)


def _policy_rules(
    resolver: _Resolver, ref: str, namespace: str, spec: dict
) -> dict[str, list[_Rule]]:
    """The rules of each direction the policy governs (an empty list still isolates)."""
    rules: dict[str, list[_Rule]] = {}
    types = policy_types(spec)
    for ptype, key, peer_key in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
        if ptype not in types:
            continue
        rules[ptype] = []
        for i, rule in enumerate(spec.get(key) or []):
            where = f"{ref} spec.{key}[{i}]"
            members, peers = resolver.peers(rule.get(peer_key), namespace, where)
            ports = Ports.parse(rule.get("ports"), f"{where}.ports")
            rules[ptype].append(_Rule(ref, members, peers, ports))
    return rules


def _select(
    inv: Inventory, resolver: _Resolver
) -> tuple[dict[str, dict[str, _Side]], dict[str, list[str]]]:
    """Which policies select each workload per direction; which workloads each policy selects."""
    sides = {w: {"Ingress": _Side(), "Egress": _Side()} for w in inv.workloads}
    policy_selects: dict[str, list[str]] = {}
    for ref, namespace, manifest in inv.policies:
        spec = manifest.get("spec") or {}
        selector = Selector.parse(spec.get("podSelector"), f"{ref} spec.podSelector")
        rules = _policy_rules(resolver, ref, namespace, spec)
        selected = [
            w for w in resolver.by_namespace.get(namespace, []) if selector.matches(w.labels)
        ]
        policy_selects[ref] = [w.ref for w in selected]
        for w in selected:
            for ptype, found in rules.items():
                sides[w.ref][ptype].policies.append(ref)
                sides[w.ref][ptype].rules += found
    return sides, policy_selects


def _allowances(
    rules: Iterable[_Rule], own: Workload, ingress: bool, inv: Inventory
) -> tuple[Allowance, ...]:
    """Merge rules per peer; named ports resolve on the pod that receives the traffic."""
    merged: dict[Peer, tuple[Ports, set[str]]] = {}
    for rule in rules:
        for peer in rule.peers:
            target = (
                own if ingress else inv.workloads.get(peer.ref) if peer.kind == "workload" else None
            )
            ports = rule.ports.resolve(target.container_ports) if target else rule.ports
            if not ports:
                continue
            old, policies = merged.get(peer, (NO_PORTS, set()))
            merged[peer] = (old.union(ports), policies | {rule.policy})
    return tuple(
        Allowance(peer, ports, tuple(sorted(policies)))
        for peer, (ports, policies) in sorted(merged.items(), key=lambda i: i[0].sort_key)
    )


def _direction(side: _Side, w: Workload, ingress: bool, inv: Inventory) -> Direction:
    # NetworkPolicies do not apply to host-network pods: they are open both ways.
    isolated = bool(side.policies) and not w.host_network
    allowances = _allowances(side.rules, w, ingress, inv) if isolated else _OPEN
    return Direction(isolated, tuple(side.policies), allowances)


def _allowed(side: _Side, isolated: bool, other: str, receiver: Workload) -> Ports:
    """Ports one side admits for the other workload, named ports resolved on the receiver."""
    if not isolated:
        return Ports.all()
    found = NO_PORTS
    for rule in side.rules:
        if other in rule.members:
            found = found.union(rule.ports)
    return found.resolve(receiver.container_ports)


def _flows(workloads: dict[str, WorkloadNetwork], sides: dict[str, dict[str, _Side]]) -> list[Flow]:
    flows = []
    for dst_ref, dst in workloads.items():
        for src_ref, src in workloads.items():
            if src_ref == dst_ref:
                continue
            out = _allowed(sides[src_ref]["Egress"], src.egress.isolated, dst_ref, dst.workload)
            if not out:
                continue
            inbound = _allowed(
                sides[dst_ref]["Ingress"], dst.ingress.isolated, src_ref, dst.workload
            )
            ports = out.intersect(inbound)
            if ports:
                flows.append(Flow(src_ref, dst_ref, ports))
    return sorted(flows, key=lambda f: (f.source, f.target))


def build_network(inv: Inventory) -> NetworkMatrix:
    sides, policy_selects = _select(inv, _Resolver(inv))
    workloads = {
        ref: WorkloadNetwork(
            w,
            _direction(sides[ref]["Ingress"], w, True, inv),
            _direction(sides[ref]["Egress"], w, False, inv),
        )
        for ref, w in inv.workloads.items()
    }
    for svc in inv.services:
        for ref in svc.workloads:
            workloads[ref].services.append(svc.ref)
    flags = _flags(workloads, policy_selects, inv)
    return NetworkMatrix(workloads, _flows(workloads, sides), policy_selects, flags)


_OPEN = (Allowance(Peer("any"), Ports.all(), ()),)


def _flags(
    workloads: dict[str, WorkloadNetwork], policy_selects: dict[str, list[str]], inv: Inventory
) -> list[Flag]:
    flags: list[Flag] = []
    for ref, net in workloads.items():
        if net.workload.host_network:
            flags.append(
                Flag(
                    "no-host-namespaces",
                    ref,
                    "runs on the host network: no NetworkPolicy applies to it",
                )
            )
        for name, d in ((INGRESS, net.ingress), (EGRESS, net.egress)):
            flags += _direction_flags(ref, name, d)
    for policy, selected in policy_selects.items():
        if not selected:
            flags.append(
                Flag(
                    "policy-selects-nothing", policy, "selects no workload: it has no effect", INFO
                )
            )
    for svc in inv.services:
        if svc.type in ("LoadBalancer", "NodePort") or svc.external:
            how = svc.type if svc.type != "ClusterIP" else "external addresses"
            flags.append(
                Flag("service-cluster-ip-only", svc.ref, f"is exposed outside the cluster ({how})")
            )
    return sorted(flags)


def _direction_flags(ref: str, direction: str, d: Direction) -> list[Flag]:
    verb = "from" if direction == INGRESS else "to"
    if not d.isolated:
        return [
            Flag(
                f"{direction}-open",
                ref,
                f"no NetworkPolicy selects it for {direction}: {direction} is open {verb} every "
                "pod of every namespace and the whole internet",
            )
        ]
    flags = []
    for a in d.allowances:
        if a.peer.kind == "any":
            what = f"any address and any pod of any namespace (a rule without `{verb}`)"
        else:
            what = a.peer.describe()
        message = (
            f"{direction} is open {verb} {what} on {a.ports.text()}, via {', '.join(a.policies)}"
        )
        if a.peer.internet:
            flags.append(Flag(f"{direction}-internet", ref, message))
        if a.peer.all_namespaces:
            flags.append(Flag(f"{direction}-all-namespaces", ref, message))
    return flags
