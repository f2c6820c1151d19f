"""The plain data every rule works on, wherever it runs.

Properties may be ordinary dicts (manifests, tests) or pulumi_policy's read-only
proxies, which raise when a value is unknown during preview. Rules therefore read
them only through the `Mapping`/`Sequence` helpers here, never `isinstance(x, dict)`,
and touch only the fields they need so one unknown value stops only the rules that
depend on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from .contract.addresses import (
    DEFAULT_ALLOWED_EGRESS_CIDRS as DEFAULT_ALLOWED_EGRESS_CIDRS,
    DEFAULT_MIN_CIDR_PREFIX as DEFAULT_MIN_CIDR_PREFIX,
    Network as Network,
)
from .contract.kinds import CLUSTER_SCOPED
from .contract.manifests import as_list as as_list, as_map as as_map, dig as dig

if TYPE_CHECKING:
    from .inventory import Inventory

MANDATORY = "mandatory"
ADVISORY = "advisory"
DISABLED = "disabled"
LEVELS = (MANDATORY, ADVISORY, DISABLED)
TIERS = ("dev", "staging", "prod")

# Token groups of pulumi-kubernetes resources that are not Kubernetes objects themselves
# (components that expand into objects, which the engine reports separately).
_COMPONENT_GROUPS = frozenset({"helm.sh", "yaml", "kustomize"})


def _quiet(read: Callable[[], Any]) -> Any:
    """A value used only to name an object in a report: an unknown one must not abort the rule.
    (Matching logic reads the same values unguarded, so an unknown there stops the rule.)"""
    try:
        return read()
    except Exception:
        return None


def token_for(api_version: str, kind: str) -> str:
    """The pulumi-kubernetes type token of an object (`v1` is the `core` group)."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


@dataclass(frozen=True)
class Resource:
    """One resource as the rules see it: a Pulumi type token plus the Kubernetes object."""

    type: str
    name: str
    props: Mapping[str, Any] = field(hash=False)
    urn: str | None = None

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Resource:
        api_version = str(manifest.get("apiVersion") or "v1")
        kind = str(manifest.get("kind") or "Unknown")
        name = str(dig(manifest, "metadata", "name") or "")
        return cls(type=token_for(api_version, kind), name=name, props=manifest)

    @cached_property
    def _token(self) -> tuple[str, str, str]:
        parts = self.type.split(":")
        if len(parts) != 3:
            return ("", "", "")
        package, module, kind = parts
        return package, module.split("/", 1)[0], kind

    @property
    def kind(self) -> str:
        return self._token[2]

    @property
    def group(self) -> str:
        """API group, `core` for the legacy group."""
        return self._token[1]

    @cached_property
    def is_kubernetes(self) -> bool:
        """A Kubernetes object (not a chart, a config group, a patch, a provider or another cloud)."""
        package, group, kind = self._token
        return (
            package == "kubernetes"
            and group not in _COMPONENT_GROUPS
            and not kind.endswith(("Patch", "List"))
        )

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        return as_map(self.props.get("metadata"))

    @cached_property
    def object_name(self) -> str:
        """metadata.name, or the Pulumi resource name when the provider will auto-name it."""
        return str(self.metadata.get("name") or self.name)

    @cached_property
    def namespace(self) -> str | None:
        value = self.metadata.get("namespace")
        return str(value) if value else None

    @property
    def effective_namespace(self) -> str | None:
        """Where the object lands: its namespace, `default` when unset, None if cluster-scoped."""
        if self.kind in CLUSTER_SCOPED:
            return None
        return self.namespace or "default"

    @property
    def ref(self) -> str:
        """`Kind/namespace/name`; a name or namespace unknown during preview shows as `?`."""
        namespace = _quiet(lambda: self.namespace or "-") or "?"
        name = _quiet(lambda: self.object_name) or "?"
        return f"{self.kind}/{namespace}/{name}"

    @cached_property
    def labels(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("labels"))

    @cached_property
    def annotations(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("annotations"))

    @property
    def spec(self) -> Mapping[str, Any]:
        return as_map(self.props.get("spec"))

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value derived from the props, computed once: many rules read the same pod."""
        cache = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]


@dataclass(frozen=True)
class Violation:
    rule_id: str
    resource: str
    message: str
    hint: str
    enforcement: str
    urn: str | None = None

    @property
    def mandatory(self) -> bool:
        return self.enforcement == MANDATORY

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "resource": self.resource,
            "message": self.message,
            "hint": self.hint,
            "enforcement": self.enforcement,
            "urn": self.urn,
        }


@dataclass(frozen=True)
class Settings:
    """What a rule may need beyond the resources: the tier and the allowed egress ranges.

    `declared_only`: `allowed_egress_cidrs` is the environment's whole declaration (its
    platform ranges, databases and backends), so private space outside it is refused too;
    without it (a folder of manifests, nothing declared) private space is judged by breadth.
    """

    tier: str = "dev"
    allowed_egress_cidrs: tuple[str, ...] = DEFAULT_ALLOWED_EGRESS_CIDRS
    declared_only: bool = False
    min_cidr_prefix: tuple[int, int] = DEFAULT_MIN_CIDR_PREFIX

    def min_prefix(self, version: int) -> int:
        return self.min_cidr_prefix[0] if version == 4 else self.min_cidr_prefix[1]

    @cached_property
    def allowed_networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.allowed_egress_cidrs)


# A stack finding names the resource it is about: a Resource, or a ref when the
# object is referenced but not part of the set (a Secret a Deployment mounts, say).
Target = Resource | str
ResourceCheck = Callable[[Resource, Settings], Iterable[str]]
StackCheck = Callable[["Inventory", Settings], Iterable[tuple[Target, str]]]


@dataclass(frozen=True)
class Rule:
    """One policy: a pure check plus what a reader needs to act on its findings."""

    id: str
    description: str
    hint: str
    scope: Literal["resource", "stack"]
    check: Callable[..., Iterable[Any]] = field(repr=False)
    kinds: frozenset[str] = frozenset()
    levels: Mapping[str, str] = field(default_factory=lambda: {"*": MANDATORY})
    config_schema: Mapping[str, Any] = field(default_factory=dict)

    def level(self, tier: str, overrides: Mapping[str, str] | None = None) -> str:
        if overrides and self.id in overrides:
            return overrides[self.id]
        return self.levels.get(tier, self.levels.get("*", MANDATORY))

    def applies_to(self, resource: Resource) -> bool:
        return resource.is_kubernetes and (not self.kinds or resource.kind in self.kinds)


def resource_rule(
    id: str,
    description: str,
    hint: str,
    *,
    kinds: Iterable[str] = (),
    levels: Mapping[str, str] | None = None,
    config_schema: Mapping[str, Any] | None = None,
) -> Callable[[ResourceCheck], Rule]:
    def wrap(check: ResourceCheck) -> Rule:
        return Rule(
            id,
            description,
            hint,
            "resource",
            check,
            frozenset(kinds),
            levels or {"*": MANDATORY},
            config_schema or {},
        )

    return wrap


def stack_rule(
    id: str,
    description: str,
    hint: str,
    *,
    levels: Mapping[str, str] | None = None,
) -> Callable[[StackCheck], Rule]:
    def wrap(check: StackCheck) -> Rule:
        return Rule(id, description, hint, "stack", check, frozenset(), levels or {"*": MANDATORY})

    return wrap
