"""Each shipped stack, deployed for real: up, ready, idempotent, policy-clean, rotated, destroyed.

The tests of one stack run in file order against one deployment (a class-scoped
fixture), as a platform team would run the commands.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from functools import partial
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509

from infra.pure.config import PROJECT
from infra.pure.naming import (
    ANNOTATION_SERVING_CERTIFICATE,
    ANNOTATION_UPSTREAM_CA,
    UPSTREAM_CA_CONFIG_MAP,
    backend_secret_name,
    issued_base,
    issued_name,
    mcp_release,
    server_tls_secret,
)
from tests.certificates.issued import make_ca
from tests.certificates.probe import fetch, https_server
from tests.e2e.conftest import STACKS
from tests.e2e.harness.contract import compare_object
from tests.e2e.harness.perimeter import Perimeter, live_audit
from tests.e2e.harness.tools import REPO
from tests.e2e.harness.watch import SecretPresenceWatch

RUNTIME_CLASS = """
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {{name: {name}}}
handler: runsc
"""


def ensure_runtime_class(perimeter: Perimeter) -> None:
    """The documented prerequisite; kwok runs no containers, so any handler will do."""
    for name in perimeter.required_runtime_classes():
        perimeter.cluster.kubectl("apply", "-f", "-", stdin=RUNTIME_CLASS.format(name=name))


def _deploy(
    request, workspace, cluster, proxy_tls, platform_api, suffix: str
) -> Iterator[Perimeter]:
    perimeter = Perimeter.prepare(
        workspace,
        cluster,
        f"e2e-{request.param}{suffix}",
        proxy_tls,
        platform_api,
        stack_file=REPO / f"Pulumi.{request.param}.yaml",
    )
    ensure_runtime_class(perimeter)
    perimeter.runs["up"] = perimeter.stack.up(check=False)
    try:
        yield perimeter
    finally:
        # Leave nothing behind even when a test failed before the destroy stage ran.
        perimeter.stack.destroy(check=False)
        perimeter.stack.remove()


@pytest.fixture(scope="class", params=STACKS)
def deployed(request, workspace, cluster, proxy_tls, platform_api) -> Iterator[Perimeter]:
    """One `up` of a shipped stack that the tests below only read: any order, any subset."""
    yield from _deploy(request, workspace, cluster, proxy_tls, platform_api, "")


@pytest.fixture(scope="class", params=STACKS)
def changed(request, workspace, cluster, proxy_tls, platform_api) -> Iterator[Perimeter]:
    """A second `up` of the stack, for the stages that change it."""
    yield from _deploy(request, workspace, cluster, proxy_tls, platform_api, "-changes")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def mounted(template: dict, source: str, base: str) -> str:
    """The name of the one `source` ("secret" or "configMap") volume named `<base>-<digest>`
    that a pod template mounts."""
    key = "secretName" if source == "secret" else "name"
    (name,) = [
        v[source][key]
        for v in template["spec"].get("volumes", [])
        if source in v and v[source][key].startswith(f"{base}-")
    ]
    return str(name)


def available(deployment: dict) -> bool:
    return any(
        c["type"] == "Available" and c["status"] == "True"
        for c in deployment.get("status", {}).get("conditions", [])
    )


def complete(job: dict) -> bool:
    return any(
        c["type"] == "Complete" and c["status"] == "True"
        for c in job.get("status", {}).get("conditions", [])
    )


class TestShippedStack:
    def test_up_succeeds(self, deployed: Perimeter) -> None:
        up = deployed.runs["up"]
        assert up.returncode == 0, up.output[-6000:]
        for warning in deployed.config.warnings:  # dev's 60-second pool, as the render warns
            assert warning in " ".join(up.output.split()), f"up did not warn: {warning}"
        resources = deployed.stack.export()["deployment"]["resources"]
        assert len(resources) > 20
        namespace = deployed.kube("get", "namespace", deployed.namespace)
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    def test_every_deployment_available_and_job_complete(self, deployed: Perimeter) -> None:
        deployments = deployed.objects("deployments")
        names = {d["metadata"]["name"] for d in deployments}
        expected = {f"mcp-server-{s.name}" for s in deployed.config.mcp_servers}
        expected |= {f"sandbox-runner-{p.name}" for p in deployed.config.sandboxes}
        assert expected | {"mcp-tunnel"} <= names
        not_ready = [d["metadata"]["name"] for d in deployments if not available(d)]
        assert not not_ready, f"Deployments not Available: {not_ready}"
        jobs = deployed.objects("jobs")
        assert jobs, "no role-provisioner Job"
        assert all(complete(j) for j in jobs), [j["metadata"]["name"] for j in jobs]

    def test_no_pod_refused_by_pod_security(self, deployed: Perimeter) -> None:
        events = deployed.objects("events")
        refused = [e["message"] for e in events if "violates PodSecurity" in e.get("message", "")]
        assert not refused, refused
        # Issue 22 §13: each workload's ServiceAccount exists before its Deployment's pods.
        no_account = [
            e["message"]
            for e in events
            if e.get("reason") == "FailedCreate" and "serviceaccount" in e.get("message", "")
        ]
        assert not no_account, no_account
        for rs in deployed.objects("replicasets"):
            want = rs["spec"].get("replicas", 0)
            assert rs.get("status", {}).get("readyReplicas", 0) == want, rs["metadata"]["name"]

    def test_preview_right_after_has_no_changes(self, deployed: Perimeter) -> None:
        deployed.stack.preview("--expect-no-changes")

    def test_policy_pack_passes_through_the_engine(self, deployed: Perimeter) -> None:
        env = deployed.config.environment
        result = deployed.stack.preview(
            "--policy-pack",
            str(REPO / "policies"),
            "--policy-pack-config",
            str(REPO / "policies" / "config" / f"{env}.json"),
        )
        assert "[mandatory]" not in result.output

    def test_live_audit_reports_no_drift(self, deployed: Perimeter) -> None:
        result = live_audit(deployed)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    def test_offline_render_is_what_the_engine_deployed(self, deployed: Perimeter) -> None:
        """Every rendered object exists live, with every rendered field unchanged."""
        from infra.offline.commands.audit import deployed_tunnel_domain
        from infra.offline.mocked import render_environment

        namespace = deployed.namespace
        live_secrets = [{"metadata": s["metadata"]} for s in deployed.objects("secrets")]
        config = deployed.config
        domain = deployed_tunnel_domain(config, live_secrets)
        assert domain, "no deployed platform-token Secret names the tunnel domain"
        # What the platform assigned at `up` (offline they are placeholders), from the state.
        tunnel_id = next(
            r["id"]
            for r in deployed.stack.export()["deployment"]["resources"]
            if r["type"].endswith(":Tunnel")
        )
        environment_ids = deployed.stack.outputs()["environment_ids"]
        config = config.model_copy(
            update={
                "tunnel": config.tunnel.model_copy(update={"domain": domain, "id": tunnel_id}),
                "sandboxes": [
                    pool.model_copy(update={"environment_id": environment_ids[pool.name]})
                    for pool in config.sandboxes
                ],
            }
        )
        rendered = render_environment(config)

        by_kind: dict[str, list[dict]] = {}
        for manifest in rendered:
            by_kind.setdefault(manifest["kind"], []).append(manifest)
        problems: list[str] = []
        for kind, manifests in sorted(by_kind.items()):
            group = manifests[0]["apiVersion"].rpartition("/")[0]
            resource = f"{kind}.{group}" if group else kind
            scope = ["-n", namespace] if manifests[0]["metadata"].get("namespace") else []
            live = {
                item["metadata"]["name"]: item
                for item in deployed.kube("get", resource, *scope)["items"]
            }
            # a certificate's object is named after the certificate the engine generated
            live.update({issued_base(n) or n: item for n, item in list(live.items())})
            for manifest in manifests:
                name = manifest["metadata"]["name"]
                name = name if name in live else issued_base(name) or name
                if name not in live:
                    problems.append(f"{kind}/{name}: rendered offline, absent from the cluster")
                    continue
                problems += compare_object(manifest, live[name])
        assert not problems, "\n".join(problems[:40])

    def test_each_route_reaches_a_certificate_only_the_managed_ca_vouches_for(
        self, deployed: Perimeter
    ) -> None:
        """What the proxy does on every route, with the live CA, certificates and keys: trust
        the CA it is given, refuse any other; the checksums that roll pods match."""
        namespace = deployed.namespace
        live = partial(deployed.kube, "get", "-n", namespace)
        proxy = yaml.safe_load(live("configmap", "mcp-tunnel-config")["data"]["config.yaml"])
        assert proxy["upstream"]["tls"]["include_system_cas"] is False
        tunnel_pods = live("deployment", "mcp-tunnel")["spec"]["template"]
        ca_map = mounted(tunnel_pods, "configMap", UPSTREAM_CA_CONFIG_MAP)
        ca_pem = live("configmap", ca_map)["data"]["ca.crt"]
        assert ca_map == issued_name(UPSTREAM_CA_CONFIG_MAP, ca_pem)
        assert tunnel_pods["metadata"]["annotations"][ANNOTATION_UPSTREAM_CA] == _sha256(ca_pem)
        _, other = make_ca("a CA the perimeter never issued")
        for server in deployed.config.mcp_servers:
            upstream = urlsplit(proxy["routes"][server.route_name])
            assert upstream.scheme == "https", server.name
            pods = live("deployment", f"mcp-server-{server.name}")["spec"]["template"]
            secret = mounted(pods, "secret", server_tls_secret(server.name))
            data = live("secret", secret)["data"]
            cert, key = (base64.b64decode(data[k]).decode() for k in ("tls.crt", "tls.key"))
            assert secret == issued_name(server_tls_secret(server.name), cert)
            assert pods["metadata"]["annotations"][ANNOTATION_SERVING_CERTIFICATE] == _sha256(cert)
            with https_server(cert, key) as port:
                assert fetch(port, ca_pem, str(upstream.hostname)).startswith(b"HTTP/1.0 200")
                with pytest.raises(ssl.SSLCertVerificationError):
                    fetch(port, other["cert_pem"], str(upstream.hostname))


def stage_a_certificate_in_its_renewal_window_is_renewed_by_the_next_up(
    deployed: Perimeter,
) -> None:
    """As if the clock had moved on: one server's certificate is an hour from its end,
    inside the window; `up` issues a new one, the pods roll, nothing else is replaced."""
    state = deployed.stack.export()
    certificates = [
        r for r in state["deployment"]["resources"] if r["type"].endswith(":ServingCertificate")
    ]
    target = certificates[0]
    host = target["inputs"]["dns_names"][0]
    server = next(
        s for s in deployed.config.mcp_servers if host.startswith(f"mcp-server-{s.name}.")
    )
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    target["outputs"]["not_after"] = soon.isoformat()
    deployed.stack.import_state(state)
    live = partial(deployed.kube, "get", "-n", deployed.namespace)

    def serving() -> tuple[str, str, dict]:
        pods = live("deployment", f"mcp-server-{server.name}")["spec"]["template"]
        secret = mounted(pods, "secret", server_tls_secret(server.name))
        cert = base64.b64decode(live("secret", secret)["data"]["tls.crt"]).decode()
        return secret, cert, pods["metadata"]["annotations"]

    old_secret, old_cert, _ = serving()

    preview = deployed.stack.preview("--json")
    replaced = {
        s["urn"]
        for s in preview.json().get("steps", [])
        if s.get("op") in ("replace", "create-replacement")
    }
    # the certificate, and its Secret under the new certificate's name (created first)
    secret_urn = target["urn"].replace(
        "pulumi-python:dynamic/agent-perimeter:ServingCertificate::",
        "kubernetes:core/v1:Secret::",
    )
    assert replaced == {target["urn"], f"{secret_urn}-secret"}, replaced

    with SecretPresenceWatch(deployed.cluster.kubeconfig, deployed.namespace) as watch:
        deployed.stack.up()
    assert not watch.missing, f"a Secret a running pod reads was absent: {watch.missing[:5]}"
    new_secret, new_cert, annotations = serving()
    assert new_cert != old_cert and new_secret != old_secret
    assert annotations[ANNOTATION_SERVING_CERTIFICATE] == _sha256(new_cert)
    gone = deployed.cluster.kubectl(
        "get", "secret", old_secret, "-n", deployed.namespace, check=False
    )
    assert gone.returncode != 0, f"the renewed-away Secret {old_secret} is still there"
    renewed = x509.load_pem_x509_certificate(new_cert.encode())
    assert renewed.not_valid_after_utc - soon > datetime.timedelta(
        hours=deployed.config.upstream_tls.renew_within_hours
    )
    deployed.stack.preview("--expect-no-changes")


def stage_a_changed_backend_credential_is_a_new_secret_created_first(deployed: Perimeter) -> None:
    server = next(s for s in deployed.config.mcp_servers if s.credential_backends)
    backend = server.credential_backends[0]
    base = backend_secret_name(server, backend.name)
    live = partial(deployed.kube, "get", "-n", deployed.namespace)

    def mounted_now() -> str:
        return mounted(live("deployment", mcp_release(server))["spec"]["template"], "secret", base)

    old = mounted_now()
    deployed.stack.set_secret_path(
        f"{PROJECT}:backendCredentials.{server.name}.{backend.name}", secrets.token_urlsafe(24)
    )
    with SecretPresenceWatch(deployed.cluster.kubeconfig, deployed.namespace) as watch:
        deployed.stack.up()
    assert not watch.missing, f"a Secret a running pod reads was absent: {watch.missing[:5]}"
    new = mounted_now()
    assert new != old and issued_base(new) == base
    gone = deployed.cluster.kubectl("get", "secret", old, "-n", deployed.namespace, check=False)
    assert gone.returncode != 0, f"the replaced credential's Secret {old} is still there"
    deployed.stack.preview("--expect-no-changes")


def stage_rotation_changes_only_credentials_and_their_readers(deployed: Perimeter) -> None:
    deployed.edit_settings(rotation_epoch=deployed.config.rotation_epoch + 1)
    preview = deployed.stack.preview("--json")
    steps = [s for s in preview.json().get("steps", []) if s.get("op") not in ("same", "read")]
    changed = sorted({s["urn"].split("::")[-1] for s in steps})
    assert changed, "raising rotation_epoch changed nothing"
    untouched = ("mcp-tunnel", "sandbox-runner", "network", "perimeter")
    wrongly = [name for name in changed if name.startswith(untouched)]
    assert not wrongly, f"rotation touched objects whose credentials did not change: {wrongly}"

    with SecretPresenceWatch(deployed.cluster.kubeconfig, deployed.namespace) as watch:
        deployed.stack.up()
    assert watch.polls > 5
    assert not watch.missing, f"a Secret a running pod reads was absent: {watch.missing[:5]}"
    deployed.stack.preview("--expect-no-changes")


def stage_destroy_removes_everything(deployed: Perimeter) -> None:
    deployed.stack.destroy()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if deployed.cluster.kubectl("get", "namespace", deployed.namespace, check=False).returncode:
            break
        time.sleep(1)
    else:
        pytest.fail(f"namespace {deployed.namespace} still exists after destroy")
    assert json.loads(deployed.stack.run("stack", "export", with_config=False).stdout)[
        "deployment"
    ].get("resources") in (None, [])


class TestShippedStackChanges:
    """The stages that change a deployed stack, in their one order, in one test: each leaves
    the stack converged (`preview --expect-no-changes`) for the next, and destroy ends it."""

    def test_renew_replace_rotate_then_destroy(self, changed: Perimeter) -> None:
        assert changed.runs["up"].returncode == 0, changed.runs["up"].output[-6000:]
        stage_a_certificate_in_its_renewal_window_is_renewed_by_the_next_up(changed)
        stage_a_changed_backend_credential_is_a_new_secret_created_first(changed)
        stage_rotation_changes_only_credentials_and_their_readers(changed)
        stage_destroy_removes_everything(changed)
