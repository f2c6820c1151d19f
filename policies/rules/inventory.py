"""Indexes over a whole set of resources, built once and only as far as a rule asks.

Laziness matters under preview: an unknown value in one object should stop only
the stack rules that read it, not every rule that shares the index.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from . import sql
from .contract import names
from .k8s import all_secret_references, containers, is_workload, pod_labels, pod_views
from .model import Resource, as_list, as_map


@dataclass(frozen=True)
class Document:
    """A structured document carried in a ConfigMap: parsed, or the reason it is not."""

    resource: Resource
    data: Any
    error: str | None = None


def _parse_json(resource: Resource, key: str) -> Document:
    text = as_map(resource.props.get("data")).get(key)
    if not isinstance(text, str):
        return Document(resource, None, f"has no data key {key!r}")
    try:
        return Document(resource, json.loads(text))
    except ValueError as exc:
        return Document(resource, None, f"{key} is not valid JSON: {exc}")


def _parse_yaml(resource: Resource, key: str) -> Document:
    import yaml  # the pack pins PyYAML; imported late to keep the pure path light

    text = as_map(resource.props.get("data")).get(key)
    if not isinstance(text, str):
        return Document(resource, None, f"has no data key {key!r}")
    try:
        return Document(resource, yaml.safe_load(text))
    except yaml.YAMLError as exc:
        return Document(resource, None, f"{key} is not valid YAML: {exc}")


def is_provisioner(workload: Resource) -> bool:
    component = workload.labels.get(names.LABEL_COMPONENT) or pod_labels(workload).get(
        names.LABEL_COMPONENT
    )
    return workload.kind == "Job" and component == names.COMPONENT_PROVISIONER


class Inventory:
    def __init__(self, resources: Iterable[Resource]):
        self.resources = [r for r in resources if r.is_kubernetes]

    @cached_property
    def by_kind(self) -> Mapping[str, list[Resource]]:
        found: dict[str, list[Resource]] = defaultdict(list)
        for resource in self.resources:
            found[resource.kind].append(resource)
        return found

    def kind(self, *kinds: str) -> list[Resource]:
        return [r for k in kinds for r in self.by_kind.get(k, ())]

    @cached_property
    def workloads(self) -> list[Resource]:
        return [r for r in self.resources if is_workload(r)]

    @cached_property
    def secrets(self) -> dict[tuple[str | None, str], Resource]:
        return {(s.effective_namespace, s.object_name): s for s in self.kind("Secret")}

    @cached_property
    def service_accounts(self) -> dict[tuple[str | None, str], Resource]:
        return {(a.effective_namespace, a.object_name): a for a in self.kind("ServiceAccount")}

    @cached_property
    def secret_readers(self) -> dict[tuple[str | None, str], list[Resource]]:
        """(namespace, Secret name) -> the workloads that read it, in input order."""
        readers: dict[tuple[str | None, str], list[Resource]] = defaultdict(list)
        for workload in self.workloads:
            for secret in sorted(all_secret_references(workload)):
                readers[(workload.effective_namespace, secret)].append(workload)
        return readers

    def readers_of(self, secret: Resource) -> list[Resource]:
        return self.secret_readers.get((secret.effective_namespace, secret.object_name), [])

    def credential_kind(self, secret: Resource) -> str | None:
        """What a Secret grants, from the whole picture: its credential label, else its
        annotations, its name (the program's forms), or its reader (the role provisioner
        reads the admin credential). A removed label does not make a credential harmless."""
        label = secret.labels.get(names.LABEL_CREDENTIAL)
        if label:
            return str(label)
        annotations = secret.annotations
        for annotation, kind in (
            (names.ANNOTATION_DATABASE_ROLE, names.CREDENTIAL_DATABASE_ROLE),
            (names.ANNOTATION_MCP_SERVER_URL, names.CREDENTIAL_PLATFORM_TOKEN),
            (names.ANNOTATION_BACKEND, names.CREDENTIAL_BACKEND),
        ):
            if annotations.get(annotation):
                return kind
        by_name = names.credential_by_name(secret.object_name)
        if by_name:
            return by_name
        if any(is_provisioner(reader) for reader in self.readers_of(secret)):
            return names.CREDENTIAL_DATABASE_ADMIN
        return None

    def secrets_granting(self, credential: str) -> list[Resource]:
        return [s for s in self.kind("Secret") if self.credential_kind(s) == credential]

    def _config_maps_labelled(self, label: str) -> list[Resource]:
        return [c for c in self.kind("ConfigMap") if str(c.labels.get(label)).lower() == "true"]

    @cached_property
    def agent_definitions(self) -> list[Document]:
        return [
            _parse_json(c, names.AGENT_DEFINITION_KEY)
            for c in self._config_maps_labelled(names.LABEL_AGENT_DEFINITION)
        ]

    @cached_property
    def role_sql(self) -> list[tuple[Resource, str]]:
        found = []
        for config_map in self._config_maps_labelled(names.LABEL_ROLE_SQL):
            text = as_map(config_map.props.get("data")).get(names.ROLE_SQL_KEY)
            found.append((config_map, text if isinstance(text, str) else ""))
        return found

    @cached_property
    def tunnel_configs(self) -> list[Document]:
        return [
            _parse_yaml(c, names.TUNNEL_CONFIG_KEY)
            for c in self.kind("ConfigMap")
            if c.labels.get(names.LABEL_NAME) == names.COMPONENT_TUNNEL
            and names.TUNNEL_CONFIG_KEY in as_map(c.props.get("data"))
        ]

    @cached_property
    def _by_instance(self) -> dict[str, list[Resource]]:
        found: dict[str, list[Resource]] = defaultdict(list)
        for workload in self.workloads:
            found[str(pod_labels(workload).get(names.LABEL_INSTANCE))].append(workload)
        return found

    def server_workloads(self, server: str) -> list[Resource]:
        return self._by_instance.get(names.mcp_release(server), [])


def agent_servers(document: Document) -> list[Mapping[str, Any]]:
    return [as_map(s) for s in as_list(as_map(document.data).get("mcp_servers"))]


def agent_toolsets(document: Document) -> list[Mapping[str, Any]]:
    return [
        as_map(t)
        for t in as_list(as_map(document.data).get("tools"))
        if as_map(t).get("type") == "mcp_toolset"
    ]


# Words that make a text worth parsing as role SQL (the parser, not this, judges it).
_SQL_HINT = re.compile(
    r"\b(GRANT|CREATE\s+(ROLE|USER|GROUP)|ALTER\s+(ROLE|USER|GROUP|DEFAULT)|EXECUTE|DO)\b", re.I
)
_SQL_KEY = re.compile(r"\.(p?sql)$", re.I)


def _decoded(value: Any) -> str | None:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _texts(resource: Resource) -> Iterator[tuple[str, str, bool]]:
    """(where, text, declared) for every string an object carries that could hold SQL."""
    labelled = str(resource.labels.get(names.LABEL_ROLE_SQL)).lower() == "true"
    if resource.kind in ("ConfigMap", "Secret"):
        for field, encoded in (
            ("data", resource.kind == "Secret"),
            ("stringData", False),
            ("binaryData", True),
        ):
            for key, value in as_map(resource.props.get(field)).items():
                text = _decoded(value) if encoded else value
                if isinstance(text, str):
                    declared = bool(_SQL_KEY.search(str(key))) or (
                        labelled and key == names.ROLE_SQL_KEY
                    )
                    yield f"{field}.{key}", text, declared
        return
    for pod in pod_views(resource):
        for label, container in containers(pod.spec):
            parts = [*as_list(container.get("command")), *as_list(container.get("args"))]
            parts += [as_map(e).get("value") for e in as_list(container.get("env"))]
            for part in parts:
                if isinstance(part, str):
                    yield label, part, False


def _candidates(text: str, declared: bool) -> list[str]:
    """The text itself, or (when it is not SQL, say a shell line) its shell words that are."""
    if declared or sql.analyse(text).error is None:
        return [text]
    try:
        words = shlex.split(text)
    except ValueError:
        return []
    return [w for w in words if _SQL_HINT.search(w) and sql.analyse(w).error is None]


def role_sql_texts(resource: Resource) -> list[tuple[str, str]]:
    """(where, SQL) of every piece of role SQL an object carries, labelled or not."""

    def find() -> list[tuple[str, str]]:
        found = []
        for where, text, declared in _texts(resource):
            if not declared and not _SQL_HINT.search(text):
                continue
            found += [(where, t) for t in _candidates(text, declared)]
        return found

    result: list[tuple[str, str]] = resource.memo("role_sql", find)
    return result
