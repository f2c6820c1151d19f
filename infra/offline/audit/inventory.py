"""What the audit reads out of a list of manifests: workloads, namespaces, Services, Secrets.

Everything else in the audit works on this inventory, so the rules about where
a pod template lives (CronJob → jobTemplate), which namespace an object without
one belongs to, and how a pod reads a Secret are written once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.contract.kinds import CLUSTER_SCOPED
from infra.contract.manifests import SecretUse, containers, manifest_pods, secret_uses
from infra.offline.audit.selectors import NAMESPACE_NAME_LABEL, Selector
from infra.offline.manifests import Manifest
from infra.pure import naming


def object_ref(kind: str, namespace: str | None, name: str) -> str:
    """`Kind/namespace/name`, as `infra.offline.manifests.ref` writes it."""
    return f"{kind}/{namespace or '-'}/{name}"


def _meta(manifest: Manifest) -> dict[str, Any]:
    return manifest.get("metadata") or {}


def namespace_of(manifest: Manifest, default: str) -> str | None:
    if manifest.get("kind") in CLUSTER_SCOPED:
        return None
    return _meta(manifest).get("namespace") or default


@dataclass
class Workload:
    ref: str
    kind: str
    namespace: str
    name: str
    labels: dict[str, str]
    component: str
    container_ports: dict[tuple[str, str], int]  # (protocol, name) -> port, for named ports
    secret_uses: tuple[SecretUse, ...]
    host_network: bool

    @property
    def short(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Service:
    ref: str
    namespace: str
    name: str
    type: str
    selector: dict[str, str]
    external: tuple[str, ...]  # externalIPs, externalName
    workloads: list[str] = field(default_factory=list)


@dataclass
class SecretObject:
    ref: str
    namespace: str
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class Inventory:
    workloads: dict[str, Workload]
    namespaces: dict[str, dict[str, str]]
    policies: list[tuple[str, str, Manifest]]  # (ref, namespace, manifest)
    services: list[Service]
    secrets: dict[tuple[str, str], SecretObject]  # (namespace, name)
    config_maps: list[tuple[str, Manifest]]


def pod_template(manifest: Manifest) -> tuple[dict[str, str], dict[str, Any]]:
    """Labels and spec of the pods a workload creates (the first, where a custom resource runs
    several): what policies select and what they run. Found by the contract's one reader, so
    a workload is whatever runs a pod, as the rules see it."""
    pods = manifest_pods(manifest)
    if not pods:
        return {}, {}
    return dict(pods[0].labels), dict(pods[0].spec)


def _container_ports(pod: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    named: dict[tuple[str, str], int] = {}
    for _, c in containers(pod):
        for p in c.get("ports") or []:
            if p.get("name") and p.get("containerPort"):
                named[(str(p.get("protocol") or "TCP"), p["name"])] = int(p["containerPort"])
    return named


def _workload(manifest: Manifest, namespace: str) -> Workload:
    kind, name = manifest["kind"], _meta(manifest).get("name", "?")
    labels, pod = pod_template(manifest)
    return Workload(
        ref=object_ref(kind, namespace, name),
        kind=kind,
        namespace=namespace,
        name=name,
        labels=labels,
        component=labels.get(naming.LABEL_COMPONENT) or labels.get(naming.LABEL_NAME) or kind,
        container_ports=_container_ports(pod),
        secret_uses=secret_uses(pod),
        host_network=bool(pod.get("hostNetwork")),
    )


def _service(manifest: Manifest, namespace: str) -> Service:
    spec = manifest.get("spec") or {}
    name = _meta(manifest).get("name", "?")
    external = tuple(spec.get("externalIPs") or [])
    if spec.get("externalName"):
        external += (str(spec["externalName"]),)
    return Service(
        ref=object_ref("Service", namespace, name),
        namespace=namespace,
        name=name,
        type=spec.get("type") or "ClusterIP",
        selector=dict(spec.get("selector") or {}),
        external=external,
    )


def build_inventory(manifests: Iterable[Manifest], default_namespace: str) -> Inventory:
    inv = Inventory({}, {}, [], [], {}, [])
    for m in manifests:
        kind = m.get("kind", "?")
        meta = _meta(m)
        ns = namespace_of(m, default_namespace)
        ref = object_ref(kind, ns, meta.get("name", "?"))
        if ns is not None:
            inv.namespaces.setdefault(ns, {NAMESPACE_NAME_LABEL: ns})
        if kind == "Namespace":
            name = meta.get("name", "?")
            inv.namespaces[name] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: name}
        elif ns is not None and manifest_pods(m):
            inv.workloads[ref] = _workload(m, ns)
        elif kind == "NetworkPolicy" and ns is not None:
            inv.policies.append((ref, ns, m))
        elif kind == "Service" and ns is not None:
            inv.services.append(_service(m, ns))
        elif kind == "Secret" and ns is not None:
            inv.secrets[(ns, meta.get("name", "?"))] = SecretObject(
                ref=ref,
                namespace=ns,
                name=meta.get("name", "?"),
                labels=dict(meta.get("labels") or {}),
                annotations=dict(meta.get("annotations") or {}),
            )
        elif kind == "ConfigMap":
            inv.config_maps.append((ref, m))
    for svc in inv.services:
        if svc.selector:
            sel = Selector.from_labels(svc.selector)
            svc.workloads = [
                w.ref
                for w in inv.workloads.values()
                if w.namespace == svc.namespace and sel.matches(w.labels)
            ]
    return inv
