"""The rules CEL can express, as ValidatingAdmissionPolicies enforced by the API server itself.

CrossGuard stops a violation at `pulumi preview`; these stop it at `kubectl apply`,
after `pulumi up`, for anyone with access to the namespace. Each entry is keyed by
the id of the pack rule it enforces (the pack's own description and hint travel with
it), and every message starts with that id, so a denial names the same rule a
preview or `check` would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import names
from .model import Rule, Settings, Target, as_list, as_map, dig, stack_rule
from .network import (
    GATEWAY_API_GROUPS,
    GATEWAY_KINDS,
    INGRESS_KINDS_BY_GROUP,
    KNATIVE_VISIBILITY_LABELS,
    METADATA_ADDRESSES,
    METADATA_FORMS,
)

if TYPE_CHECKING:
    from .inventory import Inventory

PART_OF = ("app.kubernetes.io/part-of", "agent-perimeter")
RULE_LABEL = "agent-perimeter.io/rule"

# Pods and everything that carries a pod template: a violating Deployment is refused
# itself, not merely its pods later, out of sight, in a ReplicaSet's events.
_POD_RESOURCES = (
    ("", ("pods",)),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
)
POD_SPEC = (
    "object.kind == 'Pod' ? object.spec : "
    "(object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : "
    "object.spec.template.spec)"
)
_CONTAINERS = (
    "variables.spec.containers"
    " + (has(variables.spec.initContainers) ? variables.spec.initContainers : [])"
    " + (has(variables.spec.ephemeralContainers) ? variables.spec.ephemeralContainers : [])"
)
# The metadata rule's own address list, in every spelling CEL's ip() accepts: it refuses
# IPv4-mapped IPv6, so an ipBlock written that way fails to evaluate and is denied.
CEL_METADATA_ADDRESSES = tuple(
    str(a) for a in METADATA_FORMS if getattr(a, "ipv4_mapped", None) is None
)
PRIVILEGED_CLUSTER_ROLES = ("cluster-admin", "admin", "edit")


@dataclass(frozen=True)
class Validation:
    expression: str
    message: str


@dataclass(frozen=True)
class AdmissionRule:
    rule_id: str
    resources: tuple[tuple[str, tuple[str, ...]], ...]
    validations: tuple[Validation, ...]
    variables: tuple[tuple[str, str], ...] = ()


def plural(kind: str) -> str:
    """The resource name of a kind, as the API server lists it (HTTPProxy -> httpproxies)."""
    lower = kind.lower()
    if lower.endswith(("s", "x")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def _ingress_resources() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (group, tuple(sorted(plural(k) for k in kinds)))
        for group, kinds in sorted(INGRESS_KINDS_BY_GROUP.items())
    )


def _q(value: str) -> str:
    return json.dumps(value)  # a CEL string literal


def _cel_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def admission_rules(allowed_egress_cidrs: Sequence[str]) -> tuple[AdmissionRule, ...]:
    """The CEL form of each rule; the egress allowance is the environment's, inlined."""
    same_family_within = (
        f"{_cel_list(allowed_egress_cidrs)}.exists(a, cidr(a).ip().family() == cidr(t.ipBlock.cidr).ip().family()"
        " && cidr(a).containsCIDR(cidr(t.ipBlock.cidr)))"
    )
    # An address counts when the block holds it and no `except` of the block takes it out,
    # exactly as the offline rule (network.reachable_metadata) judges it.
    metadata_inside = " || ".join(
        f"(cidr(t.ipBlock.cidr).ip().family() == ip({_q(a)}).family()"
        f" && cidr(t.ipBlock.cidr).containsIP(ip({_q(a)}))"
        f" && !(has(t.ipBlock.except) && t.ipBlock.except.exists(e,"
        f" cidr(e).ip().family() == ip({_q(a)}).family() && cidr(e).containsIP(ip({_q(a)})))))"
        for a in CEL_METADATA_ADDRESSES
    )
    egress_rules = "(has(object.spec.egress) ? object.spec.egress : [])"
    ingress_rules = "(has(object.spec.ingress) ? object.spec.ingress : [])"
    return (
        AdmissionRule(
            "service-cluster-ip-only",
            (("", ("services",)),),
            (
                Validation(
                    "!has(object.spec.type) || object.spec.type == 'ClusterIP'",
                    "only ClusterIP Services: NodePort, LoadBalancer and ExternalName open "
                    "or redirect an inbound path",
                ),
                Validation(
                    "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                    "no externalIPs: they route outside traffic to the Service",
                ),
            ),
        ),
        AdmissionRule(
            "no-ingress",
            _ingress_resources(),
            (
                Validation(
                    # A cluster-local Knative Service or Route, or an Istio VirtualService bound
                    # to the mesh alone, is reachable only inside the cluster.
                    "object.apiVersion.startsWith('serving.knative.dev/') && "
                    "(object.kind == 'Service' || object.kind == 'Route') && "
                    "has(object.metadata.labels) && ("
                    + " || ".join(
                        f"({_q(label)} in object.metadata.labels && "
                        f"object.metadata.labels[{_q(label)}] == 'cluster-local')"
                        for label in KNATIVE_VISIBILITY_LABELS
                    )
                    + ") || (object.apiVersion.startsWith('networking.istio.io/') && "
                    "object.kind == 'VirtualService' && (!has(object.spec.gateways) || "
                    "object.spec.gateways.all(g, g == 'mesh')))",
                    "no Ingress or ingress-like object: nothing may be exposed from the perimeter",
                ),
            ),
        ),
        AdmissionRule(
            "no-gateway-api",
            tuple(
                (group, tuple(sorted(plural(k) for k in GATEWAY_KINDS)))
                for group in sorted(GATEWAY_API_GROUPS)
            ),
            (Validation("false", "no Gateway API objects: nothing may be exposed"),),
        ),
        AdmissionRule(
            "no-host-namespaces",
            _POD_RESOURCES,
            tuple(
                Validation(
                    f"!has(variables.spec.{field}) || !variables.spec.{field}",
                    f"no {field}: a pod shares nothing with its node",
                )
                for field in ("hostNetwork", "hostPID", "hostIPC")
            ),
            (("spec", POD_SPEC),),
        ),
        AdmissionRule(
            "no-host-ports",
            _POD_RESOURCES,
            (
                Validation(
                    f"({_CONTAINERS}).all(c, !has(c.ports) || "
                    "c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))",
                    "no hostPort: it opens an inbound port on the node",
                ),
            ),
            (("spec", POD_SPEC),),
        ),
        AdmissionRule(
            "ingress-from-scoped-sources",
            (("networking.k8s.io", ("networkpolicies",)),),
            (
                Validation(
                    f"{ingress_rules}.all(r, has(r.from) && size(r.from) > 0)",
                    "every ingress rule names its sources: a rule without `from` admits "
                    "every source",
                ),
                Validation(
                    f"{ingress_rules}.all(r, !has(r.from) || r.from.all(f, !has(f.ipBlock)))",
                    "no ingress from an ipBlock: nothing outside the cluster dials in",
                ),
                Validation(
                    f"{ingress_rules}.all(r, !has(r.from) || r.from.all(f, "
                    "!has(f.namespaceSelector) || (has(f.namespaceSelector.matchLabels) && "
                    "'kubernetes.io/metadata.name' in f.namespaceSelector.matchLabels && "
                    "!has(f.namespaceSelector.matchExpressions))))",
                    "an ingress namespaceSelector names one namespace by "
                    "kubernetes.io/metadata.name; anything else may match every namespace",
                ),
            ),
        ),
        AdmissionRule(
            "egress-only-to-allowed-cidrs",
            (("networking.k8s.io", ("networkpolicies",)),),
            (
                Validation(
                    f"{egress_rules}.all(r, has(r.to) && size(r.to) > 0)",
                    "every egress rule names its destinations: a rule without `to` "
                    "reaches every address",
                ),
                Validation(
                    f"{egress_rules}.all(r, !has(r.to) || r.to.all(t, !has(t.ipBlock) || "
                    f"{same_family_within}))",
                    "egress ipBlocks stay within this environment's platform and database "
                    f"ranges ({', '.join(allowed_egress_cidrs)})",
                ),
            ),
        ),
        AdmissionRule(
            "metadata-endpoint-unreachable",
            (("networking.k8s.io", ("networkpolicies",)),),
            (
                Validation(
                    f"{egress_rules}.all(r, !has(r.to) || r.to.all(t, !has(t.ipBlock) || "
                    f"!({metadata_inside})))",
                    "no egress to a cloud metadata or credential endpoint "
                    f"({', '.join(str(a) for a in METADATA_ADDRESSES)}, in any spelling)",
                ),
            ),
        ),
        AdmissionRule(
            "no-privileged-role-binding",
            (("rbac.authorization.k8s.io", ("rolebindings",)),),
            (
                Validation(
                    "!(object.roleRef.kind == 'ClusterRole' && "
                    f"object.roleRef.name in {_cel_list(PRIVILEGED_CLUSTER_ROLES)})",
                    f"no RoleBinding to the ClusterRoles {', '.join(PRIVILEGED_CLUSTER_ROLES)}",
                ),
            ),
        ),
    )


def policy_name(environment: str, rule_id: str) -> str:
    return f"agent-perimeter-{environment}-{rule_id}"


def admission_manifests(
    rules_by_id: dict[str, Rule],
    *,
    namespace: str,
    environment: str,
    allowed_egress_cidrs: Sequence[str],
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """One ValidatingAdmissionPolicy and one Binding per rule, bound to the perimeter namespace."""
    found: list[dict[str, Any]] = []
    for rule in admission_rules(allowed_egress_cidrs):
        pack_rule = rules_by_id[rule.rule_id]  # a KeyError here is a rule id the pack lost
        name = policy_name(environment, rule.rule_id)
        metadata = {
            "name": name,
            "labels": {**labels, RULE_LABEL: rule.rule_id},
            "annotations": {"agent-perimeter.io/rule-description": pack_rule.description},
        }
        found.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": metadata,
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": [group],
                                "apiVersions": ["*"],
                                "resources": list(resources),
                                "operations": ["CREATE", "UPDATE"],
                            }
                            for group, resources in rule.resources
                        ]
                    },
                    "variables": [{"name": n, "expression": e} for n, e in rule.variables],
                    "validations": [
                        {
                            "expression": v.expression,
                            "message": f"[{rule.rule_id}] {v.message}. {pack_rule.hint}",
                        }
                        for v in rule.validations
                    ],
                },
            }
        )
        found.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {**metadata, "annotations": {}},
                "spec": {
                    "policyName": name,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {
                            "matchLabels": {names.NAMESPACE_NAME_LABEL: namespace}
                        }
                    },
                },
            }
        )
    return found


def _enforced_rules(inventory: Inventory, namespace: str) -> set[str]:
    """Rule ids with a policy and a Deny binding that selects exactly this namespace."""
    policies = {
        r.object_name: str(r.labels.get(RULE_LABEL, ""))
        for r in inventory.by_kind.get("ValidatingAdmissionPolicy", [])
        if dig(r.props, "spec", "failurePolicy") in (None, "Fail")
    }
    enforced = set()
    for binding in inventory.by_kind.get("ValidatingAdmissionPolicyBinding", []):
        spec = binding.spec
        selector = as_map(dig(spec, "matchResources", "namespaceSelector"))
        bound = as_map(selector.get("matchLabels")).get(names.NAMESPACE_NAME_LABEL)
        if (
            spec.get("policyName") in policies
            and "Deny" in as_list(spec.get("validationActions"))
            and bound == namespace
            and not selector.get("matchExpressions")
        ):
            enforced.add(policies[str(spec["policyName"])])
    return enforced


@stack_rule(
    "admission-policies-enforced",
    "The perimeter namespace is guarded at admission by the pack's CEL-expressible rules.",
    "Deploy the environment's ValidatingAdmissionPolicies and their Deny bindings (the program "
    "creates them with the namespace); without them kubectl can add what a preview refuses.",
)
def admission_policies_enforced(
    inventory: Inventory, settings: Settings
) -> Iterable[tuple[Target, str]]:
    required = {rule.rule_id for rule in admission_rules(settings.allowed_egress_cidrs)}
    for namespace in inventory.by_kind.get("Namespace", []):
        if namespace.labels.get(PART_OF[0]) != PART_OF[1]:
            continue  # only the bundle's own namespace is promised these guards
        missing = sorted(required - _enforced_rules(inventory, namespace.object_name))
        if missing:
            yield (
                namespace,
                (
                    f"no ValidatingAdmissionPolicy with a Deny binding on this namespace for: "
                    f"{', '.join(missing)}"
                ),
            )


RULES: tuple[Rule, ...] = (admission_policies_enforced,)
