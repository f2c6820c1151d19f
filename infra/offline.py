"""Run the program with no engine, no cluster and no cloud: Pulumi mocks plus `helm template`.

This is what every offline command (render, check, audit) sees: the very
resources `pulumi up` would register, with each chart expanded exactly as the
program asks for it, and every Secret value replaced by a visible placeholder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import yaml
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import PROJECT, PerimeterConfig, offline_secrets
from infra.manifests import Manifest, redact
from infra.tools import REPO_ROOT, RenderError, helm_binary, helm_env

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
# Kinds that live outside any namespace; everything else a chart renders gets the release's.
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "RuntimeClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


@dataclass(frozen=True)
class RecordedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    raw_inputs: dict[str, Any]


def plain(value: Any) -> Any:
    """Mock inputs as ordinary data: secret wrappers unwrapped, whole floats back to ints."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) is not None and "value" in value:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fake(name: str, length: int) -> bytes:
    return hashlib.sha256(f"offline:{name}".encode()).digest()[:length]


class RecordingMocks(pulumi.runtime.Mocks):
    """Stands in for the engine and remembers every resource the program registers."""

    def __init__(self) -> None:
        self.resources: list[RecordedResource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = plain(args.inputs)
        state = dict(inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = _fake(args.name, 24).hex()
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = _fake(args.name, int(inputs.get("length", 16)))
            state["base64"] = base64.b64encode(raw).decode()
            state["hex"] = raw.hex()
        self.resources.append(RecordedResource(args.typ, args.name, inputs, args.inputs))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


@dataclass
class Synthesis:
    """The registered resources and the stack outputs of one offline run."""

    resources: list[RecordedResource]
    urns: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def synthesize(config: PerimeterConfig) -> Synthesis:
    """Run `build` under mocks, as a test would, and collect what it registered."""
    from infra.stack import build

    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=config.environment, preview=False)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    outputs: dict[str, Any] = {}

    def program() -> None:
        perimeter = build(config, offline_secrets(config))
        outputs["agent_definition"] = perimeter.agent.definition
        perimeter.vault_credentials.apply(lambda v: outputs.__setitem__("vault_credentials", v))

    _sync_await(run_pulumi_func(program))
    urns = list(getattr(SETTINGS.monitor, "resources", {}))
    return Synthesis(mocks.resources, urns, outputs)


def helm_template(
    release: str, chart: str, namespace: str, values: dict[str, Any]
) -> list[Manifest]:
    """`helm template` with exactly the inputs the program gives the Chart resource."""
    chart_path = (REPO_ROOT / chart).resolve()
    with tempfile.TemporaryDirectory(prefix="agent-perimeter-values-") as tmp:
        values_file = Path(tmp) / "values.json"
        values_file.write_text(json.dumps(values))
        proc = subprocess.run(
            [
                helm_binary(),
                "template",
                release,
                str(chart_path),
                "--namespace",
                namespace,
                "-f",
                str(values_file),
            ],
            capture_output=True,
            text=True,
            env=helm_env(),
            check=False,
        )
    if proc.returncode != 0:
        raise RenderError(f"helm template {release} ({chart}) failed:\n{proc.stderr.strip()}")
    manifests = [doc for doc in yaml.safe_load_all(proc.stdout) if isinstance(doc, dict)]
    for manifest in manifests:
        meta = manifest.setdefault("metadata", {})
        if manifest.get("kind") not in CLUSTER_SCOPED:
            meta.setdefault("namespace", namespace)
    return manifests


def manifests_of(synthesis: Synthesis) -> list[Manifest]:
    """Kubernetes objects in registration order, charts expanded (in parallel), secrets redacted."""
    charts = [r for r in synthesis.resources if r.type == CHART_TYPE]
    with ThreadPoolExecutor(max_workers=4) as pool:
        expanded = dict(
            zip(
                (id(c) for c in charts),
                pool.map(
                    lambda c: helm_template(
                        c.inputs.get("name") or c.name,
                        c.inputs["chart"],
                        c.inputs["namespace"],
                        c.inputs.get("values") or {},
                    ),
                    charts,
                ),
                strict=True,
            )
        )
    manifests: list[Manifest] = []
    for resource in synthesis.resources:
        if resource.type == CHART_TYPE:
            manifests.extend(expanded[id(resource)])
        elif resource.type.startswith("kubernetes:") and "kind" in resource.inputs:
            manifests.append(resource.inputs)
    return [redact(m) for m in manifests]


def render_environment(config: PerimeterConfig) -> list[Manifest]:
    """Every Kubernetes object of one environment, as `pulumi up` would create it."""
    return manifests_of(synthesize(config))
