"""Run the program with no engine, no cluster and no cloud: Pulumi mocks plus `helm template`.

This is what every offline command (render, check, audit) sees: the very
resources `pulumi up` would register, with each chart expanded exactly as the
program asks for it, and every Secret value replaced by a visible placeholder.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import resource as resource_runtime
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.contract.kinds import CLUSTER_SCOPED  # the one list of kinds outside namespaces
from infra.offline.manifests import Manifest, applied_file_name, redact, ref
from infra.offline.tools import REPO_ROOT, RenderError, ToolMissing, helm_env, renderer_binary
from infra.platform_api.connection import plain  # engine values as plain data, once
from infra.pure.config import PENDING_TUNNEL_DOMAIN, PROJECT, PerimeterConfig, offline_secrets

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
PLATFORM_TYPE_PREFIX = "pulumi-python:dynamic/agent-perimeter:"

# Offline ids of objects `pulumi up` would create, in the platform's own id shapes.
_PENDING_ID_PREFIX = {
    "Tunnel": "tnl_",
    "TunnelCertificate": "tcrt_",
    "Environment": "env_",
    "Vault": "vlt_",
    "VaultCredential": "vcrd_",
    "Agent": "agent_",
}


def _program_log() -> logging.Logger:
    """The program's `pulumi.log` lines on stderr, spelled as the engine prints them."""
    log = logging.getLogger("agent-perimeter.program")
    if not log.handlers:
        log.addHandler(_EngineStyle())
        log.propagate = False
    return log


class _EngineStyle(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        # The stderr of the moment (a test may have replaced it since the first render).
        print(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


@dataclass(frozen=True)
class RecordedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    raw_inputs: dict[str, Any]


# Made by `pulumi up` itself (infra/certificates), not by the platform: offline they are
# visible placeholders, never a real key.
CERTIFICATE_TYPES = {
    f"{PLATFORM_TYPE_PREFIX}CertificateAuthority",
    f"{PLATFORM_TYPE_PREFIX}ServingCertificate",
}


def certificate_placeholders(typ: str, inputs: dict[str, Any]) -> dict[str, str]:
    if typ.endswith(":CertificateAuthority"):
        cert, key = "upstream CA certificate", "upstream CA key"
    else:
        names = ", ".join(inputs.get("dns_names") or ["?"])
        cert, key = f"serving certificate of {names}", f"serving key of {names}"
    return {
        "cert_pem": f"<generated: {cert}>",
        "key_pem": f"<secret:{key}>",
        "not_after": "<generated at pulumi up>",
    }


def _fake(name: str, length: int) -> bytes:
    return hashlib.sha256(f"offline:{name}".encode()).digest()[:length]


class RecordingMocks(pulumi.runtime.Mocks):
    """Stands in for the engine and remembers every resource the program registers; with a
    `renderer`, each chart is sent to it the moment it is registered."""

    def __init__(self) -> None:
        self.resources: list[RecordedResource] = []
        self.renderer: ChartRenderer | None = None
        # The SDK registers from its worker threads: a chart is recorded and sent in one step,
        # so the renderer's releases are in the order of the recorded charts.
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = plain(args.inputs)
        state = dict(inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = _fake(args.name, 24).hex()
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = _fake(args.name, int(inputs.get("length", 16)))
            state["base64"] = base64.b64encode(raw).decode()
            state["hex"] = raw.hex()
        resource_id = f"{args.name}-id"
        if args.typ in CERTIFICATE_TYPES:
            state.update(certificate_placeholders(args.typ, inputs))
        elif args.typ.startswith(PLATFORM_TYPE_PREFIX):
            resource_id, state = self.platform_state(args.typ, args.name, inputs, state)
        recorded = RecordedResource(args.typ, args.name, inputs, args.inputs)
        with self._lock:
            self.resources.append(recorded)
            if self.renderer is not None and args.typ == CHART_TYPE:
                self.renderer.submit(chart_release(recorded))
        return resource_id, state

    @staticmethod
    def platform_state(
        typ: str, name: str, inputs: dict[str, Any], state: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """What the platform would answer: an id (the adopted one, or a pending one), the
        tunnel's domain (configured, or a placeholder) and a placeholder token."""
        kind = typ.rsplit(":", 1)[1]
        pending = _PENDING_ID_PREFIX.get(kind, "obj_") + "pending" + _fake(name, 6).hex()
        if kind == "Tunnel":
            state["domain"] = inputs.get("expected_domain") or PENDING_TUNNEL_DOMAIN
            state["token"] = "<secret:tunnel token revealed by the platform>"
        if kind == "Agent":
            state["version"] = 1
        if kind == "TokenRotation":
            return f"{inputs.get('server')}-token-rotation", state
        return str(inputs.get("adopt_id") or pending), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


@dataclass
class Synthesis:
    """The registered resources and the stack outputs of one offline run."""

    resources: list[RecordedResource]
    urns: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Rendering the charts as they were registered (synthesize(render_charts=True)).
    charts: ChartRenderer | None = None


def synthesize(
    config: PerimeterConfig, mocks: RecordingMocks | None = None, *, render_charts: bool = False
) -> Synthesis:
    """Run `build` under mocks, as a test would, and collect what it registered.

    `render_charts`: helm renders each chart on the other cores while the program runs on
    this one (`manifests_of` then only collects the results)."""
    from infra.engine.stack import build

    mocks = mocks or RecordingMocks()
    if render_charts:
        mocks.renderer = ChartRenderer()
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=config.environment, preview=False, logger=_program_log()
    )
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    outputs: dict[str, Any] = {}

    def program() -> None:
        perimeter = build(config, offline_secrets(config))
        definitions: dict[str, Any] = outputs.setdefault("agent_definitions", {})
        for name, agent in perimeter.agents.items():

            def keep(definition: dict[str, Any], name: str = name) -> None:
                definitions[name] = definition

            agent.definition.apply(keep)
        perimeter.vault_credentials.apply(lambda v: outputs.__setitem__("vault_credentials", v))

    # The SDK keeps every Output alive until the run ends, so the cycle collector finds
    # nothing to free while it runs; paused, synthesis takes about 40% less time. The source
    # position of each registration (a whole `traceback.extract_stack`, reading source lines)
    # is for the engine's diagnostics; there is no engine here.
    collecting = gc.isenabled()
    gc.disable()
    tracing = resource_runtime._get_stack_trace
    resource_runtime._get_stack_trace = source_pb2.StackTrace
    try:
        _sync_await(run_pulumi_func(program))
    except BaseException:
        if mocks.renderer is not None:
            mocks.renderer.close()
        raise
    finally:
        resource_runtime._get_stack_trace = tracing
        if collecting:
            gc.enable()
    urns = list(getattr(SETTINGS.monitor, "resources", {}))
    return Synthesis(mocks.resources, urns, outputs, mocks.renderer)


@dataclass(frozen=True)
class Release:
    """One Chart resource as the program registers it: what `helm template` is given."""

    name: str
    chart: str
    namespace: str
    values: dict[str, Any]
    set_args: tuple[str, ...] = ()  # `--set` pairs; the program never uses them, tests do


@dataclass(frozen=True)
class Rendered:
    """One release: helm template's output, and its documents as the Kubernetes libraries
    read YAML (the renderer converts them, as the provider that deploys them does)."""

    text: str
    objects: list[Any]


class ChartRenderer:
    """One renderer process (scripts/renderer, helm's own packages) for a whole run.

    Each release is sent when it is known and rendered right away, on another core than
    the program's; `results` waits for them all. One helm process per release cost ~0.2 s.
    """

    def __init__(self) -> None:
        self.releases: list[Release] = []
        self._proc: subprocess.Popen[str] | None = None
        self._missing: ToolMissing | None = None

    def submit(self, release: Release) -> None:
        self.releases.append(release)
        if self._missing is not None:
            return
        try:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [renderer_binary()],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=helm_env(),
                )
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(_request(release)) + "\n")
            self._proc.stdin.flush()
        except ToolMissing as exc:
            self._missing = exc
        except BrokenPipeError:
            pass  # the renderer stopped: `results` reports why

    def results(self) -> list[Rendered | RenderError]:
        """For each release, `helm template <name> <chart> --namespace <ns> -f values.json`'s
        stdout byte for byte and its objects, or the error helm would print."""
        if self._missing is not None:
            raise self._missing
        if self._proc is None:
            return []
        try:
            stdout, stderr = self._proc.communicate()
        except BrokenPipeError:
            stdout, stderr = "", "the renderer closed its input early"
        if self._proc.returncode != 0:
            raise RenderError(f"the chart renderer failed:\n{stderr.strip()}")
        return [
            RenderError(f"helm template {r.name} ({r.chart}) failed:\n{out['error'].strip()}")
            if "error" in out
            else Rendered(out["manifest"], out.get("objects") or [])
            for r, out in zip(self.releases, json.loads(stdout), strict=True)
        ]

    def close(self) -> None:
        """Stop the renderer without its results (the run they were for failed)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


def _request(release: Release) -> dict[str, Any]:
    return {
        "release": release.name,
        "chart": str((REPO_ROOT / release.chart).resolve()),
        "namespace": release.namespace,
        "values": release.values,
        "set": list(release.set_args),
    }


def render_all(releases: Sequence[Release]) -> list[Rendered | RenderError]:
    """`ChartRenderer.results` for releases known up front."""
    renderer = ChartRenderer()
    for release in releases:
        renderer.submit(release)
    return renderer.results()


def render_texts(releases: Sequence[Release]) -> list[str | RenderError]:
    """What `helm template` prints for each release (or its error)."""
    return [r if isinstance(r, RenderError) else r.text for r in render_all(releases)]


def render_releases(
    releases: Sequence[Release], rendered: Sequence[Rendered | RenderError] | None = None
) -> list[list[Manifest]]:
    """The objects of each release, as `helm template` renders them, namespaced like the
    engine's Chart does: a namespaced kind without one gets the release's."""
    expanded: list[list[Manifest]] = []
    rendered = render_all(releases) if rendered is None else rendered
    for release, result in zip(releases, rendered, strict=True):
        if isinstance(result, RenderError):
            raise result
        manifests = [d for d in result.objects if isinstance(d, dict)]
        for manifest in manifests:
            meta = manifest.setdefault("metadata", {})
            if manifest.get("kind") not in CLUSTER_SCOPED:
                meta.setdefault("namespace", release.namespace)
        expanded.append(manifests)
    return expanded


def helm_template(
    release: str, chart: str, namespace: str, values: dict[str, Any]
) -> list[Manifest]:
    """`helm template` with exactly the inputs the program gives the Chart resource."""
    return render_releases([Release(release, chart, namespace, values)])[0]


def chart_release(resource: RecordedResource) -> Release:
    return Release(
        resource.inputs.get("name") or resource.name,
        resource.inputs["chart"],
        resource.inputs["namespace"],
        resource.inputs.get("values") or {},
    )


def manifests_of(synthesis: Synthesis) -> list[Manifest]:
    """Kubernetes objects in apply order (then by name: registration order varies with the
    order outputs resolve, and every report read from them must not), charts expanded (in one
    batch), secrets redacted."""
    charts = [r for r in synthesis.resources if r.type == CHART_TYPE]
    releases = [chart_release(c) for c in charts]
    rendered = synthesis.charts.results() if synthesis.charts else None
    expanded = dict(zip((id(c) for c in charts), render_releases(releases, rendered), strict=True))
    manifests: list[Manifest] = []
    for resource in synthesis.resources:
        if resource.type == CHART_TYPE:
            manifests.extend(expanded[id(resource)])
        elif resource.type.startswith("kubernetes:") and "kind" in resource.inputs:
            manifests.append(resource.inputs)
    return sorted((redact(m) for m in manifests), key=lambda m: (applied_file_name(m), ref(m)))


def render_environment(config: PerimeterConfig) -> list[Manifest]:
    """Every Kubernetes object of one environment, as `pulumi up` would create it."""
    return manifests_of(synthesize(config, render_charts=True))


_HIDDEN_INPUTS = {"connection", "__provider", "retiring_epoch"}
_SECRET_INPUTS = {"token", "ca_certificate_pem"}


def platform_objects(config: PerimeterConfig, synthesis: Synthesis) -> dict[str, Any]:
    """The platform objects `pulumi up` would create or adopt, secrets redacted (`platform.json`)."""
    if not config.platform.enabled:
        return {
            "managed": False,
            "note": "platform.enabled is false: create these on the platform by hand",
            "agent_definitions": synthesis.outputs.get("agent_definitions", {}),
            "vault_credentials": [
                {**c, "token": "<redacted>"} for c in synthesis.outputs.get("vault_credentials", [])
            ],
        }
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in synthesis.resources:
        if not resource.type.startswith(PLATFORM_TYPE_PREFIX) or resource.type in CERTIFICATE_TYPES:
            continue
        kind = resource.type.rsplit(":", 1)[1]
        if kind == "TokenRotation":
            continue
        entry = {"resource": resource.name}
        for key, value in resource.inputs.items():
            if key in _HIDDEN_INPUTS or value is None:
                continue
            entry[key] = "<redacted>" if key in _SECRET_INPUTS else value
        found.setdefault(kind, []).append(entry)
    for entries in found.values():  # registration order depends on when outputs resolve
        entries.sort(key=lambda e: str(e["resource"]))
    connection = {
        "base_url": config.platform.base_url or "(the SDK default)",
        "workspace_id": config.platform.workspace_id,
        "api_key": "agent-perimeter:platformApiKey (secret; not needed offline)",
    }
    return {
        "managed": True,
        "connection": connection,
        "tunnel": found.get("Tunnel", [None])[0],
        "tunnel_certificates": found.get("TunnelCertificate", []),
        "environments": found.get("Environment", []),
        "vault": found.get("Vault", [None])[0],
        "vault_credentials": found.get("VaultCredential", []),
        "agents": found.get("Agent", []),
    }
