"""The one reader of manifests: the pods any object runs (the built-in controllers, and
custom resources that embed a pod template or a bare pod spec anywhere in their body), their
containers, the Secrets a pod reads, and label selectors with every operator.

Values may be plain dicts or pulumi_policy's read-only proxies (which raise on a value
unknown during preview), so they are read only through the Mapping/Sequence helpers here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .kinds import BUILTIN_GROUPS, CONTAINER_FIELDS, PODLESS_KINDS, WORKLOAD_GROUPS, WORKLOAD_KINDS

_MAX_DEPTH = 16


def as_map(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping (dict or policy proxy), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> Sequence[Any]:
    """`value` if it is a list (or policy proxy list), else an empty one; never a string."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def dig(value: Any, *path: str) -> Any:
    """Follow mapping keys; None as soon as one is missing."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True)
class PodView:
    """One pod an object runs: where it sits in the object, its metadata and its spec."""

    path: str
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]

    @property
    def labels(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("labels"))

    @property
    def annotations(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("annotations"))


def _is_pod_spec(value: Mapping[str, Any]) -> bool:
    """A mapping holding a non-empty `containers` list of container-like mappings."""
    found = as_list(value.get("containers"))
    return bool(found) and all(
        isinstance(c, Mapping) and ("image" in c or "name" in c) for c in found
    )


def _walk(value: Any, path: str, depth: int, out: list[PodView]) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        spec = value.get("spec")
        if isinstance(spec, Mapping) and _is_pod_spec(spec):
            out.append(PodView(path, as_map(value.get("metadata")), spec))
            return
        if _is_pod_spec(value):  # a bare pod spec embedded without a template
            out.append(PodView(path, {}, value))
            return
        for key, child in value.items():
            if key not in ("metadata", "status"):
                _walk(child, f"{path}.{key}" if path else str(key), depth + 1, out)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, child in enumerate(value):
            _walk(child, f"{path}[{i}]", depth + 1, out)


def api_group(api_version: str) -> str:
    """The API group of an `apiVersion`, `core` for the legacy group (`v1`)."""
    return api_version.split("/", 1)[0] if "/" in api_version else "core"


def manifest_pods(manifest: Mapping[str, Any]) -> list[PodView]:
    """Every pod a manifest runs, whatever its kind."""
    group = api_group(str(manifest.get("apiVersion") or "v1"))
    return find_pods(str(manifest.get("kind") or ""), group, manifest)


def find_pods(kind: str, group: str, body: Mapping[str, Any]) -> list[PodView]:
    """Every pod an object of `kind` in API `group` (`core` for the legacy one) runs."""
    if kind in PODLESS_KINDS and group in BUILTIN_GROUPS:
        return []
    if kind == "Pod" and group == "core":
        return [PodView("", as_map(body.get("metadata")), as_map(body.get("spec")))]
    if kind in WORKLOAD_KINDS and group in WORKLOAD_GROUPS:
        # A built-in controller's template is its pod, whatever it holds so far.
        path = (
            ("spec", "jobTemplate", "spec", "template")
            if kind == "CronJob"
            else ("spec", "template")
        )
        template = as_map(dig(body, *path))
        if template:
            return [
                PodView(
                    ".".join(path), as_map(template.get("metadata")), as_map(template.get("spec"))
                )
            ]
    found: list[PodView] = []
    for key, child in body.items():
        if key not in ("metadata", "status", "apiVersion", "kind"):
            _walk(child, str(key), 1, found)
    return found


def containers(
    spec: Mapping[str, Any], fields: tuple[str, ...] = CONTAINER_FIELDS
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(description, container) for every container of a pod spec, init and ephemeral ones too."""
    kind = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
    for field_name in fields:
        for container in as_list(spec.get(field_name)):
            container = as_map(container)
            label = kind.get(field_name, "container")
            yield f'{label} "{container.get("name", "?")}"', container


def security_context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(container.get("securityContext"))


@dataclass(frozen=True)
class SecretUse:
    """One way a pod reads a Secret: how = env | envFrom | volume | imagePullSecrets."""

    secret: str
    how: str
    detail: str


def secret_uses(spec: Mapping[str, Any]) -> tuple[SecretUse, ...]:
    """Every Secret a pod reads and how: env, envFrom, secret volumes, projected volumes and its
    image pull Secrets (the kubelet reads those for the pod: a registry credential is a
    credential). The rules count readers and the audit reports them from this one reader."""
    uses: list[SecretUse] = []
    mounts: dict[str, list[str]] = {}
    for _, container in containers(spec):
        cname = container.get("name", "?")
        for mount in as_list(container.get("volumeMounts")):
            mount = as_map(mount)
            where = f"{cname}:{mount.get('mountPath', '?')}"
            mounts.setdefault(str(mount.get("name", "")), []).append(where)
        for env in as_list(container.get("env")):
            ref = as_map(dig(env, "valueFrom", "secretKeyRef"))
            if ref.get("name"):
                detail = f"{cname}: {as_map(env).get('name')} ← key {ref.get('key')}"
                uses.append(SecretUse(str(ref["name"]), "env", detail))
        for source in as_list(container.get("envFrom")):
            name = dig(source, "secretRef", "name")
            if name:
                prefix = as_map(source).get("prefix")
                detail = f"{cname}: every key" + (f" (prefix {prefix})" if prefix else "")
                uses.append(SecretUse(str(name), "envFrom", detail))
    for volume in as_list(spec.get("volumes")):
        volume = as_map(volume)
        names = [dig(volume, "secret", "secretName")]
        names += [
            dig(source, "secret", "name") for source in as_list(dig(volume, "projected", "sources"))
        ]
        vname = str(volume.get("name", "?"))
        where = ", ".join(mounts.get(vname, [])) or "not mounted"
        uses += [SecretUse(str(n), "volume", f"volume {vname} at {where}") for n in names if n]
    for pull in as_list(spec.get("imagePullSecrets")):
        name = as_map(pull).get("name")
        if name:
            uses.append(SecretUse(str(name), "imagePullSecrets", "image pull"))
    return tuple(uses)


def secret_references(spec: Mapping[str, Any]) -> set[str]:
    """The names of every Secret a pod reads (`secret_uses`)."""
    return {use.secret for use in secret_uses(spec)}


def selector_is_empty(selector: Any) -> bool:
    """An empty label selector selects everything (and an absent one, for a podSelector, too)."""
    selector = as_map(selector)
    return not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Service-style selector (plain map) matches when every pair is among the labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# A label selector's operators; the API server refuses any other.
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_expression_refused(operator: Any, values: Collection[Any]) -> str | None:
    """Why the API server refuses one matchExpressions entry (an unknown operator, In/NotIn
    without values, Exists/DoesNotExist with some), or None when it accepts it."""
    if operator not in SELECTOR_OPERATORS:
        return f"operator {operator!r} is not one of {', '.join(SELECTOR_OPERATORS)}"
    if (operator in ("In", "NotIn")) != bool(values):
        need = "needs values" if operator in ("In", "NotIn") else "takes no values"
        return f"operator {operator} {need}"
    return None


def expression_matches(
    key: str, operator: Any, values: Collection[str], labels: Mapping[str, Any]
) -> bool:
    """One requirement against a set of labels, as the API server reads it; a requirement it
    would refuse matches nothing. Values compare as strings."""
    if selector_expression_refused(operator, values) is not None:
        return False
    present = key in labels
    if operator == "In":
        return present and str(labels[key]) in values
    if operator == "NotIn":
        return not (present and str(labels[key]) in values)
    return present if operator == "Exists" else not present


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A full label selector (matchLabels + matchExpressions) against a set of labels. An
    expression the API server would refuse (an unknown operator, In/NotIn without values,
    Exists/DoesNotExist with some) matches nothing, never everything."""
    selector = as_map(selector)
    for key, value in as_map(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in as_list(selector.get("matchExpressions")):
        expression = as_map(expression)
        values = {str(v) for v in as_list(expression.get("values"))}
        key, operator = str(expression.get("key")), expression.get("operator")
        if not expression_matches(key, operator, values, labels):
            return False
    return True
