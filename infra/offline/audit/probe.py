"""`audit --probe`: the network matrix tried by traffic on a running cluster.

Short-lived probe pods stand in for each workload of the environment: same namespace,
same labels, so every NetworkPolicy selects them as it selects the workload. A listener
pod per workload answers on the workload's ports (never Ready, so no Service routes to
it); a checker pod per workload then tries every other workload's ports, kube-dns, the
kube-apiserver, the environment's declared outside endpoints and a set of forbidden
addresses. What the checkers observe is compared, flow for flow, with what the audit's
matrix says; any difference is a disagreement.

Probe pods hold no credential and mount nothing (no ServiceAccount token, no volume),
run under Pod Security `restricted`, are labelled as probes, bounded by
`activeDeadlineSeconds`, and are deleted at the end, also on Ctrl-C. RBAC needed in the
namespace: pods create/get/list/delete and pods/log get; in `default`, get on the
`kubernetes` EndpointSlice (where the API server is).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.contract.addresses import METADATA_ADDRESS
from infra.offline.audit.core import Audit, audit_manifests
from infra.offline.audit.inventory import object_ref, pod_template
from infra.offline.audit.live import kube_client
from infra.offline.audit.network import Direction, WorkloadNetwork
from infra.offline.audit.ports import Ports
from infra.offline.manifests import Manifest
from infra.pure.config import PerimeterConfig

PROBE_LABEL = "agent-perimeter.io/probe"
ROLE_LABEL = "agent-perimeter.io/probe-role"
DNS_STUB = "kube-dns"
DNS_QUERY_NAME = "kubernetes.default.svc.cluster.local."
DEFAULT_FORBIDDEN = (f"{METADATA_ADDRESS}:80/TCP",)
POD_DEADLINE_SECONDS = 300
PROBE_USER = 65532


class ProbeError(RuntimeError):
    """The probe could not run (cluster unreachable, pods that never start); nothing judged."""


@dataclass(frozen=True)
class Target:
    """An address outside the pod network that a workload may or may not reach."""

    name: str
    address: str
    protocol: str
    port: int

    @classmethod
    def parse(cls, text: str, name: str = "forbidden") -> Target:
        """`ADDRESS:PORT[/PROTO]`, e.g. `169.254.169.254:80` or `203.0.113.10:7844/UDP`."""
        spec, _, proto = text.partition("/")
        address, sep, port = spec.rpartition(":")
        problem = None
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            problem = f"{address or text!r} is not an IP address"
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            problem = f"{text!r} needs a port: ADDRESS:PORT[/TCP|UDP]"
        protocol = (proto or "TCP").upper()
        if protocol not in ("TCP", "UDP"):
            problem = f"protocol {proto!r} is not TCP or UDP"
        if problem:
            raise ValueError(f"--forbidden {text}: {problem}")
        return cls(name, address.strip("[]"), protocol, int(port))

    @property
    def label(self) -> str:
        return f"{self.name} {self.address}"


def _first_address(cidr: str) -> str:
    network = ipaddress.ip_network(cidr, strict=False)
    if network.num_addresses <= 2:
        return str(network.network_address)
    return str(network.network_address + 1)


def _ipv4(cidrs: Iterable[str]) -> list[str]:
    return [c for c in cidrs if ipaddress.ip_network(c, strict=False).version == 4]


def _is_ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address(str(host))
    except ValueError:
        return False
    return True


def config_targets(config: PerimeterConfig) -> list[Target]:
    """The outside endpoints the environment declares, one address each (IPv4): a host given
    as an IP address is probed there, a range (or a named host's ranges) at its first
    address."""
    found: list[Target] = []
    for name, database in config.databases.items():
        addresses = (
            [database.host] if _is_ip(database.host) else map(_first_address, database.cidrs)
        )
        found += [Target(f"database {name}", a, "TCP", database.port) for a in addresses]
    for server in config.mcp_servers:
        for backend in server.backends:
            addresses = (
                [str(backend.host)]
                if _is_ip(backend.host)
                else [_first_address(c) for c in _ipv4(backend.effective_cidrs)]
            )
            found += [
                Target(f"backend {server.name}/{backend.name}", a, "TCP", port)
                for a in addresses
                for port in backend.ports
            ]
    platform = config.platform
    found += [
        Target("platform API", _first_address(c), "TCP", platform.api_port)
        for c in _ipv4(platform.api_cidrs)
    ]
    found += [
        Target("tunnel edge", _first_address(c), proto, platform.tunnel_edge_port)
        for c in _ipv4(platform.tunnel_edge_cidrs)
        for proto in ("TCP", "UDP")
    ]
    return list(dict.fromkeys(found))


# --- what the matrix expects -----------------------------------------------------------


def _admits(ports: Ports, protocol: str, port: int) -> bool:
    return any(p == protocol and lo <= port <= hi for p, lo, hi in ports.ranges)


def egress_admits(egress: Direction, address: str, protocol: str, port: int) -> bool:
    """Whether a workload's egress lets it send to an outside address (ipBlock semantics)."""
    if not egress.isolated:
        return True
    ip = ipaddress.ip_address(address)
    for allowance in egress.allowances:
        peer = allowance.peer
        if peer.kind == "any":
            hit = True
        elif peer.kind == "cidr":
            net = ipaddress.ip_network(peer.ref, strict=False)
            hit = ip.version == net.version and ip in net
            hit = hit and not any(
                ip in ipaddress.ip_network(e, strict=False)
                for e in peer.excepts
                if ipaddress.ip_network(e, strict=False).version == ip.version
            )
        else:
            hit = False
        if hit and _admits(allowance.ports, protocol, port):
            return True
    return False


@dataclass(frozen=True)
class Check:
    """One flow to try: from a source workload to a destination, and what the matrix says."""

    id: str
    source: str
    destination: str
    protocol: str
    port: int
    expected: bool
    mode: str  # banner (a probe listener answers) | connect | dns
    host: str = ""  # filled in once listener pods have addresses
    destination_ref: str = ""  # the destination workload, for pod flows

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "proto": self.protocol,
            "host": self.host,
            "port": self.port,
            "mode": self.mode,
            "name": DNS_QUERY_NAME,
        }


@dataclass(frozen=True)
class Observation:
    check: Check
    reached: bool
    detail: str

    @property
    def agrees(self) -> bool:
        return self.reached == self.check.expected


def dns_stub(config: PerimeterConfig) -> Manifest:
    """kube-dns as the audit sees it: the cluster's DNS pods by the config's labels."""
    labels = dict(config.cluster.dns_pod_labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DNS_STUB, "namespace": config.cluster.dns_namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "dns", "ports": _dns_ports()}]},
            },
        },
    }


def _dns_ports() -> list[dict[str, Any]]:
    return [{"containerPort": 53, "protocol": p} for p in ("UDP", "TCP")]


def listen_ports(manifest: Manifest, network: WorkloadNetwork) -> list[tuple[str, int]]:
    """What a listener stands in on: the workload's container ports, plus every single port
    its ingress admits (a port a policy opens with nothing behind it is still a flow)."""
    _, pod = pod_template(manifest)
    found = {
        (str(p.get("protocol") or "TCP"), int(p["containerPort"]))
        for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
        for p in c.get("ports") or []
        if p.get("containerPort")
    }
    if network.ingress.isolated:
        for allowance in network.ingress.allowances:
            found |= {
                (p, lo) for p, lo, hi in allowance.ports.ranges if lo == hi and p in ("TCP", "UDP")
            }
    return sorted(found)


@dataclass
class Plan:
    namespace: str
    workloads: dict[str, Manifest]  # ref -> manifest, the workloads probes stand in for
    listeners: dict[str, list[tuple[str, int]]]
    checks: list[Check]
    skipped: list[str] = field(default_factory=list)


def plan(
    audit: Audit,
    manifests: Sequence[Manifest],
    namespace: str,
    targets: Sequence[Target],
    *,
    dns_ref: str,
    apiserver: tuple[str, int, str] | None,
    udp_echo: bool = False,
) -> Plan:
    """Every check, with the matrix's verdict on it. `apiserver` is (endpoint address,
    endpoint port, the address pods dial: the `kubernetes` Service)."""
    net = audit.network
    by_ref = {
        object_ref(m["kind"], namespace, m["metadata"]["name"]): m
        for m in manifests
        if (m.get("metadata") or {}).get("namespace", namespace) == namespace
    }
    ours = {
        ref: by_ref[ref]
        for ref, wn in net.workloads.items()
        if wn.workload.namespace == namespace and not wn.workload.host_network and ref in by_ref
    }
    listeners = {ref: listen_ports(m, net.workloads[ref]) for ref, m in ours.items()}
    flows = {(f.source, f.target): f.ports for f in net.flows}
    checks: list[Check] = []
    skipped: list[str] = []

    def add(**kw: Any) -> None:
        checks.append(Check(id=f"c{len(checks)}", **kw))

    for src in ours:
        egress = net.workloads[src].egress
        for dst, ports in listeners.items():
            if dst == src:
                continue
            for proto, port in ports:
                allowed = _admits(flows.get((src, dst), Ports()), proto, port)
                add(
                    source=src,
                    destination=net.workloads[dst].workload.short,
                    destination_ref=dst,
                    protocol=proto,
                    port=port,
                    expected=allowed,
                    mode="banner",
                )
        dns_ports = flows.get((src, dns_ref), Ports())
        for proto in ("UDP", "TCP"):
            add(
                source=src,
                destination="kube-dns",
                protocol=proto,
                port=53,
                expected=_admits(dns_ports, proto, 53),
                mode="dns",
            )
        if apiserver is not None:
            address, port, dial = apiserver
            add(
                source=src,
                destination=f"kube-apiserver {address}:{port}",
                protocol="TCP",
                port=443,
                host=dial,
                expected=egress_admits(egress, address, "TCP", port),
                mode="connect",
            )
        for t in targets:
            if t.protocol == "UDP" and not udp_echo:
                continue
            add(
                source=src,
                destination=t.label,
                protocol=t.protocol,
                port=t.port,
                host=t.address,
                expected=egress_admits(egress, t.address, t.protocol, t.port),
                mode="banner" if t.protocol == "UDP" else "connect",
            )
    if not udp_echo and any(t.protocol == "UDP" for t in targets):
        skipped.append(
            "UDP to outside addresses: nothing there answers a probe (--udp-echo when "
            "stand-ins echo)"
        )
    return Plan(namespace, ours, listeners, checks, skipped)


def probe_audit(source_manifests: Sequence[Manifest], config: PerimeterConfig) -> Audit:
    """The environment's audit with kube-dns in it, so DNS flows are flows like the others."""
    return audit_manifests(
        [*source_manifests, dns_stub(config)],
        label="probe",
        default_namespace=config.namespace,
        policies=False,
    )


# --- running it ------------------------------------------------------------------------


def _security(ports: Iterable[tuple[str, int]]) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": PROBE_USER,
        "runAsGroup": PROBE_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if any(port < 1024 for _, port in ports):
        # A safe sysctl (allowed under restricted): bind low ports without a capability.
        pod["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    return pod


def probe_pod(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    run_id: str,
    role: str,
    image: str,
    args: list[str],
    ports: Sequence[tuple[str, int]] = (),
) -> Manifest:
    container: dict[str, Any] = {
        "name": "probe",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "200m", "memory": "64Mi"},
        },
    }
    if role == "listener":
        # Never Ready: no Service may route real traffic to a stand-in.
        container["readinessProbe"] = {
            "exec": {"command": ["/bin/probe", "never-ready"]},
            "periodSeconds": 3600,
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, PROBE_LABEL: run_id, ROLE_LABEL: role},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "activeDeadlineSeconds": POD_DEADLINE_SECONDS,
            "securityContext": _security(ports),
            "containers": [container],
        },
    }


class Cluster:
    """The few calls the probe makes, through the official `kubernetes` client."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        client = kube_client(context, kubeconfig)
        self.core = client.CoreV1Api()
        self.discovery = client.DiscoveryV1Api()

    def create(self, pod: Manifest) -> None:
        self.core.create_namespaced_pod(pod["metadata"]["namespace"], pod)

    def pods(self, namespace: str, selector: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(namespace, label_selector=selector).items)

    def log(self, namespace: str, name: str) -> str:
        return str(self.core.read_namespaced_pod_log(name, namespace))

    def delete(self, namespace: str, selector: str) -> None:
        self.core.delete_collection_namespaced_pod(
            namespace, label_selector=selector, grace_period_seconds=0
        )

    def apiserver(self) -> tuple[str, int, str] | None:
        """(endpoint address, port, ClusterIP) of the `kubernetes` Service."""
        service = self.core.read_namespaced_service("kubernetes", "default")
        slices = self.discovery.list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=kubernetes"
        ).items
        for s in slices:
            for endpoint in s.endpoints or []:
                for port in s.ports or []:
                    return str(endpoint.addresses[0]), int(port.port), str(service.spec.cluster_ip)
        return None


def _wait(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise ProbeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def _short(ref: str) -> str:
    return ref.rsplit("/", 1)[-1][:40].rstrip("-.")


class ProbeRun:
    """One probe of one namespace: listeners up, checkers run, pods gone afterwards."""

    def __init__(self, cluster: Cluster, plan: Plan, image: str, *, start_timeout: float = 90.0):
        self.cluster = cluster
        self.plan = plan
        self.image = image
        self.start_timeout = start_timeout
        self.run_id = secrets.token_hex(4)
        self.selector = f"{PROBE_LABEL}={self.run_id}"

    def __enter__(self) -> ProbeRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cluster.delete(self.plan.namespace, self.selector)

    def _labels(self, ref: str) -> dict[str, str]:
        labels, _ = pod_template(self.plan.workloads[ref])
        return labels

    def listeners(self) -> dict[str, str]:
        """Listener pods up and Running; their pod addresses by workload."""
        ns = self.plan.namespace
        for ref, ports in self.plan.listeners.items():
            if not ports:
                continue
            args = ["listen", *(f"{p.lower()}/{n}" for p, n in ports)]
            self.cluster.create(
                probe_pod(
                    f"probe-{self.run_id}-l-{_short(ref)}",
                    ns,
                    self._labels(ref),
                    self.run_id,
                    "listener",
                    self.image,
                    args,
                    ports,
                )
            )
        selector = f"{self.selector},{ROLE_LABEL}=listener"
        wanted = sum(1 for ports in self.plan.listeners.values() if ports)
        addresses: dict[str, str] = {}

        def running() -> bool:
            pods = self.cluster.pods(ns, selector)
            for pod in pods:
                if pod.status.phase in ("Failed", "Succeeded"):
                    raise ProbeError(f"listener pod {pod.metadata.name} stopped: {pod.status}")
            up = [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]
            for p in up:
                addresses[p.metadata.name] = p.status.pod_ip
            return len(up) == wanted

        _wait(f"{wanted} listener pods in {ns}", running, self.start_timeout)
        return {
            ref: addresses[f"probe-{self.run_id}-l-{_short(ref)}"]
            for ref, ports in self.plan.listeners.items()
            if ports
        }

    def check(self, checks: Sequence[Check], round_name: str) -> list[Observation]:
        ns = self.plan.namespace
        by_source: dict[str, list[Check]] = {}
        for c in checks:
            by_source.setdefault(c.source, []).append(c)
        names = {}
        for src, group in by_source.items():
            name = f"probe-{self.run_id}-{round_name}-{_short(src)}"
            names[src] = name
            payload = json.dumps([c.wire() for c in group], separators=(",", ":"))
            args = ["check", payload]
            # A policy agent enforces a new pod's traffic only once it has learnt the pod's
            # address: the checker first waits until a flow the matrix denies is blocked.
            canary = next((c for c in group if not c.expected and c.mode != "dns"), None)
            if canary is not None:
                args.append(json.dumps(canary.wire(), separators=(",", ":")))
            self.cluster.create(
                probe_pod(name, ns, self._labels(src), self.run_id, "checker", self.image, args)
            )
        selector = f"{self.selector},{ROLE_LABEL}=checker"
        finished: dict[str, str] = {}

        def done() -> bool:
            for pod in self.cluster.pods(ns, selector):
                if pod.metadata.name in names.values() and pod.status.phase in (
                    "Succeeded",
                    "Failed",
                ):
                    finished[pod.metadata.name] = pod.status.phase
            return all(n in finished for n in names.values())

        _wait(f"{len(names)} checker pods in {ns}", done, self.start_timeout)
        observed: list[Observation] = []
        by_id = {c.id: c for c in checks}
        for name in names.values():
            if finished[name] != "Succeeded":
                raise ProbeError(f"checker pod {name} failed: {self.cluster.log(ns, name)[-400:]}")
            for line in self.cluster.log(ns, name).splitlines():
                if not line.startswith("{"):
                    continue
                row = json.loads(line)
                if row["id"] == "settle":
                    continue
                observed.append(Observation(by_id[row["id"]], row["reached"], row["detail"]))
        missing = {c.id for c in checks} - {o.check.id for o in observed}
        if missing:
            raise ProbeError(f"{len(missing)} checks gave no result")
        return observed


def run_probe(
    cluster: Cluster, the_plan: Plan, image: str, *, settle_seconds: float = 3.0
) -> list[Observation]:
    """Every check once; a disagreement is tried again after `settle_seconds` (a policy
    agent learns a new pod's address within a second or so) and the second answer stands."""
    with ProbeRun(cluster, the_plan, image) as run:
        addresses = run.listeners()
        checks = [
            Check(**{**c.__dict__, "host": addresses[c.destination_ref]})
            if c.destination_ref
            else c
            for c in the_plan.checks
        ]
        dns = (
            cluster.core.read_namespaced_service("kube-dns", "kube-system").spec.cluster_ip
            if any(c.mode == "dns" for c in checks)
            else ""
        )
        checks = [Check(**{**c.__dict__, "host": dns}) if c.mode == "dns" else c for c in checks]
        first = run.check(checks, "a")
        again = [o.check for o in first if not o.agrees]
        if not again:
            return first
        time.sleep(settle_seconds)
        second = {o.check.id: o for o in run.check(again, "b")}
        return [second.get(o.check.id, o) for o in first]


def render_table(observations: Sequence[Observation], skipped: Sequence[str] = ()) -> str:
    bad = [o for o in observations if not o.agrees]
    lines = [
        f"# Probed network matrix: {len(observations)} flows, {len(bad)} disagreements",
        "",
        "| source | destination | port | matrix | observed | |",
        "|---|---|---|---|---|---|",
    ]
    for o in sorted(observations, key=lambda o: (o.agrees, o.check.source, o.check.destination)):
        c = o.check
        lines.append(
            f"| {_short(c.source)} | {c.destination} | {c.protocol}/{c.port} "
            f"| {'allow' if c.expected else 'deny'} | {'reached' if o.reached else 'blocked'} "
            f"| {'ok' if o.agrees else 'DISAGREES'} |"
        )
    lines += ["", *(f"Not probed: {s}" for s in skipped)]
    return "\n".join(lines).rstrip() + "\n"
