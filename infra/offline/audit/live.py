"""Live mode: read the namespace from a cluster and report drift against the program.

Read-only by construction: the reader only lists and gets. Secrets are listed
as metadata only (the API server's PartialObjectMetadataList), so their values
never leave the cluster; whatever comes back is stripped to metadata anyway.
The reader is a small interface so tests feed it recorded API responses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.contract.kinds import WORKLOAD_KINDS
from infra.offline.audit.core import audit_manifests
from infra.offline.audit.diff import AREAS, AuditDiff, Change, diff_audits
from infra.offline.audit.inventory import build_inventory, object_ref, pod_template
from infra.offline.audit.network import policy_types
from infra.offline.audit.policy import PolicyFinding, evaluate_policies
from infra.offline.audit.report import Namer, code, md_table
from infra.offline.manifests import LAST_APPLIED, Manifest
from infra.pure.naming import issued_base

# kind -> (apiVersion, client API class, list method)
KINDS: dict[str, tuple[str, str, str]] = {
    "NetworkPolicy": ("networking.k8s.io/v1", "NetworkingV1Api", "list_namespaced_network_policy"),
    "Secret": ("v1", "CoreV1Api", "list_namespaced_secret"),
    "Service": ("v1", "CoreV1Api", "list_namespaced_service"),
    "ServiceAccount": ("v1", "CoreV1Api", "list_namespaced_service_account"),
    "Deployment": ("apps/v1", "AppsV1Api", "list_namespaced_deployment"),
    "StatefulSet": ("apps/v1", "AppsV1Api", "list_namespaced_stateful_set"),
    "DaemonSet": ("apps/v1", "AppsV1Api", "list_namespaced_daemon_set"),
    "Job": ("batch/v1", "BatchV1Api", "list_namespaced_job"),
    "CronJob": ("batch/v1", "BatchV1Api", "list_namespaced_cron_job"),
    "Ingress": ("networking.k8s.io/v1", "NetworkingV1Api", "list_namespaced_ingress"),
    "Role": ("rbac.authorization.k8s.io/v1", "RbacAuthorizationV1Api", "list_namespaced_role"),
    "RoleBinding": (
        "rbac.authorization.k8s.io/v1",
        "RbacAuthorizationV1Api",
        "list_namespaced_role_binding",
    ),
}
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
# Present in every namespace without anyone declaring it.
BUILT_IN = {("ServiceAccount", "default")}
# Labels the Job controller adds to a Job's pod template.
SERVER_POD_LABELS = frozenset(
    {
        "controller-uid",
        "job-name",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-name",
    }
)


class LiveError(RuntimeError):
    """The cluster cannot be read (no kubeconfig, unreachable, forbidden)."""


class ClusterReader(Protocol):
    """Raw API responses as the server sends them (camelCase JSON)."""

    def list(self, kind: str, namespace: str) -> Mapping[str, Any]: ...

    def namespace(self, name: str) -> Mapping[str, Any] | None: ...


def kube_client(context: str | None = None, kubeconfig: str | None = None) -> Any:
    """The `kubernetes` client module, configured: the kubeconfig file given, else KUBECONFIG
    as it is now (the client reads it only once, when first imported), else in-cluster."""
    from kubernetes import client, config

    try:
        config.load_kube_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG"), context=context
        )
    except Exception as exc:  # the loader raises several unrelated types
        if context is not None or kubeconfig is not None:
            where = f"context {context!r}" if context else f"file {kubeconfig}"
            raise LiveError(f"cannot load kubeconfig {where}: {exc}") from None
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise LiveError(f"no kubeconfig and not inside a cluster: {exc}") from None
    return client


class KubernetesReader:
    """The `kubernetes` client, asked for raw JSON so nothing is lost in model round trips."""

    def __init__(self, context: str | None = None, kubeconfig: str | None = None):
        self._client = kube_client(context, kubeconfig)
        self._api = self._client.ApiClient()

    def _call(self, what: str, call: Any, missing_ok: bool = False) -> Any:
        """Raw JSON of one read; forbidden/absent is None when the caller can do without."""
        from kubernetes.client.exceptions import ApiException

        try:
            return json.loads(call().data)
        except ApiException as exc:
            if missing_ok and exc.status in (403, 404):
                return None
            raise LiveError(f"{what}: {exc.status} {exc.reason}") from None
        except OSError as exc:
            raise LiveError(f"{what}: {exc}") from None

    def list(self, kind: str, namespace: str) -> Mapping[str, Any]:
        _, api_class, method = KINDS[kind]
        api = getattr(self._client, api_class)(self._api)
        headers = {"Accept": METADATA_ONLY} if kind == "Secret" else None
        return self._call(
            f"list {kind} in {namespace}",
            lambda: getattr(api, method)(namespace, _preload_content=False, _headers=headers),
        )

    def namespace(self, name: str) -> Mapping[str, Any] | None:
        api = self._client.CoreV1Api(self._api)
        return self._call(
            f"read Namespace {name}",
            lambda: api.read_namespace(name, _preload_content=False),
            missing_ok=True,
        )


class RecordedReader:
    """Responses recorded from a real API server: {kind: list response, "Namespace": object}."""

    def __init__(self, responses: Mapping[str, Any]):
        self.responses = responses

    def list(self, kind: str, namespace: str) -> Mapping[str, Any]:
        return self.responses.get(kind) or {"kind": f"{kind}List", "items": []}

    def namespace(self, name: str) -> Mapping[str, Any] | None:
        return self.responses.get("Namespace")


def secret_metadata(item: Mapping[str, Any]) -> Manifest:
    """Only what the audit may know of a Secret: its name, labels and annotations."""
    meta = dict(item.get("metadata") or {})
    meta.pop("managedFields", None)
    if LAST_APPLIED in (meta.get("annotations") or {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    out: Manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": meta}
    if item.get("type"):
        out["type"] = item["type"]
    return out


def _controlled(item: Mapping[str, Any]) -> bool:
    """A Job its CronJob created is the CronJob's pods, not another workload."""
    owners = (item.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("controller") and o.get("kind") in WORKLOAD_KINDS for o in owners)


def objects_of(kind: str, response: Mapping[str, Any]) -> list[Manifest]:
    """Items of a list response; list items carry no kind/apiVersion, so they are set here."""
    api_version = KINDS[kind][0]
    out = []
    for item in response.get("items") or []:
        if kind == "Secret":
            out.append(secret_metadata(item))
        elif not _controlled(item):
            out.append({**item, "kind": kind, "apiVersion": api_version})
    return out


@dataclass
class LiveObjects:
    namespace: str
    manifests: list[Manifest]
    notes: list[str] = field(default_factory=list)


def read_cluster(reader: ClusterReader, namespace: str) -> LiveObjects:
    live = LiveObjects(namespace, [])
    ns = reader.namespace(namespace)
    if ns is None:
        live.notes.append(
            f"Namespace {namespace} could not be read (forbidden or absent): its labels are "
            "taken to be only kubernetes.io/metadata.name"
        )
        ns = {"metadata": {"name": namespace}}
    live.manifests.append({**ns, "kind": "Namespace", "apiVersion": "v1"})
    for kind in KINDS:
        live.manifests += objects_of(kind, reader.list(kind, namespace))
    return live


# --- drift -------------------------------------------------------------------------------------


def _selector(sel: Any) -> Any:
    if sel is None:
        return None
    exprs = sorted(
        (e.get("key"), e.get("operator"), sorted(e.get("values") or []))
        for e in sel.get("matchExpressions") or []
    )
    return {"matchLabels": dict(sorted((sel.get("matchLabels") or {}).items())), "exprs": exprs}


def _peer(peer: Mapping[str, Any]) -> Any:
    block = peer.get("ipBlock")
    return {
        "pod": _selector(peer.get("podSelector")),
        "ns": _selector(peer.get("namespaceSelector")),
        "ip": block and {"cidr": block.get("cidr"), "except": sorted(block.get("except") or [])},
    }


def _rules(rules: Any, peer_key: str) -> Any:
    """Server defaults (protocol TCP) and empty-vs-absent lists compare equal, order does not."""
    out = []
    for rule in rules or []:
        ports = sorted(
            (p.get("protocol") or "TCP", str(p.get("port")), p.get("endPort"))
            for p in rule.get("ports") or []
        )
        peers = sorted(json.dumps(_peer(p), sort_keys=True) for p in rule.get(peer_key) or [])
        out.append(json.dumps({"peers": peers, "ports": ports}, sort_keys=True))
    return sorted(out)


def policy_view(m: Manifest) -> dict[str, Any]:
    spec = m.get("spec") or {}
    return {
        "podSelector": _selector(spec.get("podSelector") or {}),
        "policyTypes": sorted(policy_types(spec)),
        "ingress": _rules(spec.get("ingress"), "from"),
        "egress": _rules(spec.get("egress"), "to"),
    }


def _service_view(m: Manifest) -> dict[str, Any]:
    spec = m.get("spec") or {}
    ports = sorted(
        (p.get("protocol") or "TCP", p.get("port"), str(p.get("targetPort", p.get("port"))))
        for p in spec.get("ports") or []
    )
    return {
        "type": spec.get("type") or "ClusterIP",
        "selector": dict(sorted((spec.get("selector") or {}).items())),
        "ports": ports,
        "externalIPs": sorted(spec.get("externalIPs") or []),
    }


def _workload_view(m: Manifest) -> dict[str, Any]:
    labels, pod = pod_template(m)
    return {
        "pod labels": {k: v for k, v in sorted(labels.items()) if k not in SERVER_POD_LABELS},
        "serviceAccountName": pod.get("serviceAccountName") or "default",
        "hostNetwork": bool(pod.get("hostNetwork")),
        "automountServiceAccountToken": pod.get("automountServiceAccountToken"),
    }


def _perimeter_metadata(m: Manifest) -> dict[str, Any]:
    meta = m.get("metadata") or {}
    return {
        part: {
            k: v for k, v in (meta.get(part) or {}).items() if k.startswith("agent-perimeter.io/")
        }
        for part in ("labels", "annotations")
    }


def _namespace_view(m: Manifest) -> dict[str, Any]:
    return {"labels": dict(sorted(((m.get("metadata") or {}).get("labels") or {}).items()))}


def _view(m: Manifest) -> dict[str, Any]:
    kind = m.get("kind")
    if kind == "NetworkPolicy":
        return policy_view(m)
    if kind == "Service":
        return _service_view(m)
    if kind in WORKLOAD_KINDS:
        return _workload_view(m)
    if kind == "Secret":
        return _perimeter_metadata(m)
    if kind == "ServiceAccount":
        return {"automountServiceAccountToken": m.get("automountServiceAccountToken")}
    return _namespace_view(m)


def _changed(program: Manifest, live: Manifest) -> str:
    a, b = _view(program), _view(live)
    if program.get("kind") == "Namespace":
        # The cluster adds labels (pod security defaults, the name label); only the program's count.
        wanted, have = a["labels"], b["labels"]
        differ = sorted(k for k, v in wanted.items() if have.get(k) != v)
        return f"labels {', '.join(differ)}" if differ else ""
    return ", ".join(k for k in a if a[k] != b.get(k))


@dataclass
class Drift:
    namespace: str
    program: str
    objects: list[Change]  # area: missing | added | changed | unexpected-reader
    reachability: AuditDiff
    notes: list[str]
    # Mandatory policy violations of the live objects that the program itself does not have:
    # an object added by hand is judged by the same rules as the program, not only "not declared".
    violations: list[PolicyFinding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.objects and not self.reachability.changes and not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "program": self.program,
            "clean": self.clean,
            "objects": [c.to_dict() for c in self.objects],
            "reachability": self.reachability.to_dict(),
            "violations": [v.to_dict() for v in self.violations],
            "notes": self.notes,
        }


def align_issued_names(declared: list[Manifest], live: Iterable[Manifest]) -> list[Manifest]:
    """The declared objects with each certificate-holding name (`<base>-<digest>`) replaced by
    the live one of the same base, everywhere it is referred to: offline the digest is of a
    placeholder, and the certificate itself is the engine's to generate."""
    live_names = {
        (m.get("kind"), base): str(m["metadata"]["name"])
        for m in live
        if (base := issued_base(str((m.get("metadata") or {}).get("name", ""))))
    }
    renames = {
        name: live_names[(m.get("kind"), base)]
        for m in declared
        if (base := issued_base(name := str((m.get("metadata") or {}).get("name", ""))))
        and (m.get("kind"), base) in live_names
    }
    if not renames:
        return declared
    text = json.dumps(declared)
    for old, new in renames.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    aligned: list[Manifest] = json.loads(text)
    return aligned


def _in_scope(manifests: Iterable[Manifest], namespace: str) -> dict[tuple[str, str], Manifest]:
    """The program's objects of the kinds live mode reads, in the audited namespace."""
    found = {}
    for m in manifests:
        kind, meta = m.get("kind"), m.get("metadata") or {}
        name = meta.get("name", "?")
        if kind == "Namespace" and name == namespace:
            found[(kind, name)] = m
        elif kind in KINDS and (meta.get("namespace") or namespace) == namespace:
            found[(str(kind), name)] = m
    return found


def _reads(manifests: list[Manifest], namespace: str) -> set[tuple[str, str, str]]:
    inv = build_inventory(manifests, namespace)
    return {
        (object_ref("Secret", w.namespace, u.secret), ref, u.how)
        for ref, w in inv.workloads.items()
        for u in w.secret_uses
    }


def compare(
    program: list[Manifest],
    live: LiveObjects,
    program_label: str,
    *,
    tier: str = "dev",
    allowed_egress_cidrs: Sequence[str] | None = None,
) -> Drift:
    ns = live.namespace
    declared = _in_scope(program, ns)
    actual = _in_scope(live.manifests, ns)
    objects: list[Change] = []
    for key in sorted(declared.keys() - actual.keys()):
        note = ""
        if key[0] == "Job" and (declared[key].get("spec") or {}).get("ttlSecondsAfterFinished"):
            note = "a finished Job is removed after ttlSecondsAfterFinished"
        objects.append(Change("missing", object_ref(key[0], ns, key[1]), note, "declared", "—"))
    for key in sorted(actual.keys() - declared.keys() - BUILT_IN):
        objects.append(Change("added", object_ref(key[0], ns, key[1]), "", "—", "present"))
    for key in sorted(declared.keys() & actual.keys()):
        what = _changed(declared[key], actual[key])
        if what:
            objects.append(Change("changed", object_ref(key[0], ns, key[1]), what, "", ""))
    program_side = list(declared.values())
    given = {(s, w) for s, w, _ in _reads(program_side, ns)}
    for secret, workload, how in sorted(_reads(live.manifests, ns)):
        if (secret, workload) not in given:
            objects.append(Change("unexpected-reader", secret, how, "—", workload))
    a = audit_manifests(program_side, label=program_label, default_namespace=ns, policies=False)
    b = audit_manifests(live.manifests, label="cluster", default_namespace=ns, policies=False)
    known = {
        (v.rule_id, v.resource)
        for v in evaluate_policies(program_side, tier, allowed_egress_cidrs).violations
    }
    violations = [
        v
        for v in evaluate_policies(live.manifests, tier, allowed_egress_cidrs).mandatory
        if (v.rule_id, v.resource) not in known
    ]
    return Drift(ns, program_label, objects, diff_audits(a, b), live.notes, violations)


SECTIONS = {
    "missing": ("Declared by the program, missing from the cluster", ["object", "note"]),
    "added": ("In the cluster, not declared by the program", ["object"]),
    "changed": ("Changed in the cluster", ["object", "differs in"]),
    "unexpected-reader": (
        "Secrets read by workloads the program did not give them to",
        ["Secret", "read by", "how"],
    ),
}


def _row(c: Change, name: Namer) -> list[str]:
    if c.area == "unexpected-reader":
        return [code(name(c.subject)), code(name(c.b)), c.what]
    return [code(name(c.subject))] + ([c.what] if c.area != "added" else [])


def render_drift_markdown(drift: Drift) -> str:
    name = Namer([drift.namespace])
    out = [f"## Live drift: namespace `{drift.namespace}` against `{drift.program}`", ""]
    out += [f"> {note}" for note in drift.notes]
    if drift.clean:
        return "\n".join([*out, "No drift: the cluster matches the program."]) + "\n"
    total = len(drift.objects) + len(drift.reachability.changes) + len(drift.violations)
    out.append(f"**{total} difference(s)**; read-only: nothing was changed in the cluster.")
    for area, (heading, header) in SECTIONS.items():
        rows = [_row(c, name) for c in drift.objects if c.area == area]
        if rows:
            out += ["", f"### {heading}", "", *md_table(header, rows)]
    if drift.violations:
        out += ["", "### Forbidden by the policy pack (objects in the cluster)", ""]
        out += md_table(
            ["rule", "object", "why"],
            [[code(v.rule_id), code(name(v.resource)), v.message] for v in drift.violations],
        )
    if drift.reachability.changes:
        out += ["", "### Reachability and credentials (program → cluster)"]
        for area, heading in AREAS.items():
            rows = [
                [code(c.subject), c.what, c.a, c.b]
                for c in drift.reachability.changes
                if c.area == area
            ]
            if rows:
                out += [
                    "",
                    f"#### {heading}",
                    "",
                    *md_table(["subject", "what", "program", "cluster"], rows),
                ]
    return "\n".join(out) + "\n"
