"""The rules CEL can express, as ValidatingAdmissionPolicies enforced by the API server itself.

CrossGuard stops a violation at `pulumi preview`; these stop it at `kubectl apply`,
after `pulumi up`, for anyone with access to the namespace. Each entry is keyed by
the id of the pack rule it enforces (the pack's own description and hint travel with
it), and every message starts with that id, so a denial names the same rule a
preview or `check` would.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .contract import names
from .contract.addresses import METADATA_ADDRESSES, METADATA_FORMS
from .contract.secret_shapes import TOKEN_SHAPES
from .k8s import selector_is_empty, selector_matches
from .model import Resource, Rule, Settings, Target, as_list, as_map, dig, stack_rule
from .network import (
    GATEWAY_API_GROUPS,
    GATEWAY_KINDS,
    INGRESS_KINDS_BY_GROUP,
    KNATIVE_VISIBILITY_LABELS,
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


def _any_shape(value: str) -> str:
    """CEL: `value` holds a credential by one of the pack's token shapes."""
    return " || ".join(f"{value}.matches({_q(shape.pattern)})" for _, shape in TOKEN_SHAPES)


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
            "no-plaintext-credential",
            _POD_RESOURCES,
            (
                Validation(
                    f"({_CONTAINERS}).all(c, (!has(c.env) || c.env.all(e, !has(e.value) || "
                    f"!({_any_shape('e.value')}))) && (!has(c.args) || c.args.all(a, "
                    f"!({_any_shape('a')}))) && (!has(c.command) || c.command.all(a, "
                    f"!({_any_shape('a')}))))",
                    "no credential in a container's env values, args or command (a password "
                    "in a URL, a token, a private key): mount it from a Secret",
                ),
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


_ALLOWANCE = re.compile(r"(\[[^\[\]]*\])\.exists\(a, cidr\(a\)")
REQUIRED_OPERATIONS = frozenset({"CREATE", "UPDATE"})


def _inlined_allowance(policy: Resource) -> list[str] | None:
    """The egress allowance a policy's CEL inlines, read back from its expressions."""
    for validation in as_list(dig(policy.props, "spec", "validations")):
        found = _ALLOWANCE.search(str(as_map(validation).get("expression", "")))
        if found:
            try:
                return [str(c) for c in json.loads(found.group(1))]
            except ValueError:
                return None
    return None


def _content(policy: Resource) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    spec = policy.spec
    expressions = tuple(str(as_map(v).get("expression")) for v in as_list(spec.get("validations")))
    variables = tuple(
        (str(as_map(v).get("name")), str(as_map(v).get("expression")))
        for v in as_list(spec.get("variables"))
    )
    return expressions, variables


def _allowance_problem(cidrs: list[str], settings: Settings) -> str | None:
    if settings.declared_only:
        extra = sorted(set(cidrs) - set(settings.allowed_egress_cidrs))
        return (
            f"inlines ranges the environment does not declare: {', '.join(extra)}"
            if extra
            else None
        )
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"inlines {cidr!r}, which is not a CIDR"
        if network.prefixlen < settings.min_prefix(network.version):
            return f"inlines {cidr}, broader than /{settings.min_prefix(network.version)}"
    return None


def _rule_of(policy: Resource, settings: Settings) -> tuple[AdmissionRule | None, str]:
    """The pack rule a policy enforces, recognised by its validations' content (never by its
    name or label), or why it enforces none."""
    inlined = _inlined_allowance(policy)
    if inlined is not None:
        problem = _allowance_problem(inlined, settings)
        if problem:
            return None, problem
    for rule in admission_rules(inlined if inlined is not None else settings.allowed_egress_cidrs):
        wanted = (tuple(v.expression for v in rule.validations), tuple(rule.variables))
        if _content(policy) == wanted:
            return rule, ""
    return None, "its validations are not the ones the pack generates for any rule"


def _covered(rule_entries: Iterable[Any], group: str, resource: str) -> bool:
    """A (group, resource) is matched for CREATE and UPDATE by one of the resource rules."""
    for entry in rule_entries:
        entry = as_map(entry)
        groups = {str(g) for g in as_list(entry.get("apiGroups"))}
        resources = {str(r) for r in as_list(entry.get("resources"))}
        operations = {str(o) for o in as_list(entry.get("operations"))}
        if (
            (group in groups or "*" in groups)
            and (resource in resources or "*" in resources)
            and ("*" in operations or operations >= REQUIRED_OPERATIONS)
        ):
            return True
    return False


def _reach_problem(policy: Resource, rule: AdmissionRule) -> str | None:
    """Why a policy does not see every CREATE and UPDATE of the kinds its rule names."""
    spec = policy.spec
    if spec.get("failurePolicy") not in (None, "Fail"):
        return "its failurePolicy lets a failing check admit the object"
    if as_list(spec.get("matchConditions")):
        return "its matchConditions can skip objects the rule must see"
    constraints = as_map(spec.get("matchConstraints"))
    for field in ("namespaceSelector", "objectSelector"):
        if not selector_is_empty(constraints.get(field)):
            return f"its matchConstraints.{field} narrows what it sees"
    for group, resources in rule.resources:
        for resource in resources:
            if not _covered(as_list(constraints.get("resourceRules")), group, resource):
                return f"it does not match CREATE and UPDATE of {resource} ({group or 'core'})"
            if _covered(as_list(constraints.get("excludeResourceRules")), group, resource):
                return f"it excludes {resource} ({group or 'core'})"
    return None


def _namespace_labels(namespace: Resource) -> dict[str, Any]:
    """The labels the API server matches: those in the set, and the name label it sets."""
    return {**namespace.labels, names.NAMESPACE_NAME_LABEL: namespace.object_name}


def _binding_problem(binding: Resource, namespace: Resource) -> str | None:
    spec = binding.spec
    if "Deny" not in as_list(spec.get("validationActions")):
        return "its binding only warns or audits (no Deny)"
    resources = as_map(spec.get("matchResources"))
    if not selector_matches(resources.get("namespaceSelector"), _namespace_labels(namespace)):
        return "its binding's namespaceSelector does not select the namespace as labelled here"
    if not selector_is_empty(resources.get("objectSelector")):
        return "its binding's objectSelector narrows what it sees"
    if as_list(resources.get("excludeResourceRules")):
        return "its binding excludes resources"
    if spec.get("paramRef") is not None:
        return "its binding takes parameters the pack's policies never read"
    return None


def _enforcement(
    inventory: Inventory, namespace: Resource, settings: Settings
) -> tuple[set[str], dict[str, str]]:
    """Rule ids enforced on `namespace` by effect, and why each guard that claims a rule (by
    its label) does not."""
    enforced: set[str] = set()
    why: dict[str, str] = {}
    bindings = inventory.by_kind.get("ValidatingAdmissionPolicyBinding", [])
    for policy in inventory.by_kind.get("ValidatingAdmissionPolicy", []):
        claimed = str(policy.labels.get(RULE_LABEL, policy.object_name))
        rule, problem = _rule_of(policy, settings)
        if rule is not None:
            claimed, problem = rule.rule_id, _reach_problem(policy, rule) or ""
        if rule is not None and not problem:
            mine = [b for b in bindings if b.spec.get("policyName") == policy.object_name]
            problems = [_binding_problem(b, namespace) for b in mine]
            if any(p is None for p in problems):
                enforced.add(rule.rule_id)
                continue
            problem = next((p for p in problems if p), "it has no binding")
        why.setdefault(claimed, f"{policy.ref}: {problem}")
    return enforced, why


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
        enforced, why = _enforcement(inventory, namespace, settings)
        missing = sorted(required - enforced)
        if missing:
            reasons = "; ".join(why[r] for r in missing if r in why)
            yield (
                namespace,
                f"not guarded at admission for: {', '.join(missing)}"
                + (f" ({reasons})" if reasons else ""),
            )


RULES: tuple[Rule, ...] = (admission_policies_enforced,)
