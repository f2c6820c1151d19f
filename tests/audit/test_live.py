"""Live mode on recorded API responses (fixtures/live), and the real client against a stub server.

No test contacts a cluster: the recorded JSON has the shape the API server
returns, and the client test talks to a local HTTP server that serves it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from infra.offline.audit import (
    KubernetesReader,
    RecordedReader,
    compare,
    read_cluster,
    render_drift_markdown,
)
from infra.offline.audit.live import METADATA_ONLY, LiveError
from tests.audit.fixtures.perimeter import environment
from tests.audit.helpers import LIVE_NS, recorded

DRIFT = {"debug-allow-all", "debug-shell", "debug-nodeport", "log-rotate", "log-rotate-29546880"}
LEAK = "LEAKED-TUNNEL-TOKEN-VALUE"


def program() -> list[dict]:
    return environment(1, 1, ns=LIVE_NS)


def live():
    return read_cluster(RecordedReader(recorded()), LIVE_NS)


def test_list_items_get_their_kind_and_secrets_only_metadata() -> None:
    objects = live().manifests
    kinds = {(m["kind"], m["apiVersion"]) for m in objects}
    assert ("NetworkPolicy", "networking.k8s.io/v1") in kinds
    assert ("Deployment", "apps/v1") in kinds
    assert ("Secret", "v1") in kinds and ("PartialObjectMetadata", "meta.k8s.io/v1") not in kinds
    for secret in (m for m in objects if m["kind"] == "Secret"):
        assert set(secret) == {"apiVersion", "kind", "metadata"}
        assert "managedFields" not in secret["metadata"]
    assert LEAK not in json.dumps(objects)


def test_jobs_a_cronjob_created_are_not_separate_workloads() -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in live().manifests}
    assert ("CronJob", "log-rotate") in names
    assert ("Job", "log-rotate-29546880") not in names
    assert ("Job", "role-provisioner-support-0123456789") in names


def test_drift_names_missing_and_added_policies_undeclared_services_and_readers() -> None:
    drift = compare(program(), live(), "fixture")
    found = {(c.area, c.subject) for c in drift.objects}
    ns = LIVE_NS
    assert ("missing", f"NetworkPolicy/{ns}/sandbox-runner") in found
    assert ("added", f"NetworkPolicy/{ns}/debug-allow-all") in found
    assert ("added", f"Service/{ns}/debug-nodeport") in found
    assert ("added", f"Deployment/{ns}/debug-shell") in found
    assert ("added", f"CronJob/{ns}/log-rotate") in found
    reader = next(c for c in drift.objects if c.area == "unexpected-reader")
    assert (reader.subject, reader.b) == (
        f"Secret/{ns}/mcp-tunnel-token",
        f"Deployment/{ns}/debug-shell",
    )
    # Server defaults (protocol TCP, clusterIP, Job controller labels...) are not drift.
    assert not [c for c in drift.objects if c.area == "changed"]
    reach = {(c.area, c.subject, c.what) for c in drift.reachability.changes}
    assert ("ingress", "Deployment/mcp-server-tickets", "all pods in every namespace") in reach
    assert ("flag", "Service/debug-nodeport", "service-cluster-ip-only") in reach
    assert not drift.clean


def test_drift_report_is_markdown_and_never_prints_secret_values() -> None:
    drift = compare(program(), live(), "fixture")
    md = render_drift_markdown(drift)
    assert md.startswith(f"## Live drift: namespace `{LIVE_NS}` against `fixture`\n")
    assert "### Secrets read by workloads the program did not give them to" in md
    assert "| `Secret/mcp-tunnel-token` | `Deployment/debug-shell` | env |" in md
    assert LEAK not in md and LEAK not in json.dumps(drift.to_dict())


def test_a_cluster_that_matches_the_program_shows_no_drift() -> None:
    responses = recorded()
    for response in responses.values():
        if "items" in response:
            response["items"] = [i for i in response["items"] if i["metadata"]["name"] not in DRIFT]
    matching = [
        m
        for m in program()
        if (m["kind"], m["metadata"]["name"]) != ("NetworkPolicy", "sandbox-runner")
    ]
    drift = compare(matching, read_cluster(RecordedReader(responses), LIVE_NS), "fixture")
    assert drift.clean, drift.to_dict()


def test_a_changed_policy_is_named() -> None:
    matching = program()
    dns = next(m for m in matching if m["metadata"]["name"] == "allow-dns-egress")
    dns["spec"]["egress"][0]["ports"] = [{"protocol": "UDP", "port": 53}]
    drift = compare(matching, live(), "fixture")
    changed = next(c for c in drift.objects if c.area == "changed")
    assert changed.subject == f"NetworkPolicy/{LIVE_NS}/allow-dns-egress"
    assert changed.what == "egress"


def test_an_unreadable_namespace_is_noted_not_fatal() -> None:
    responses = recorded()
    del responses["Namespace"]
    result = read_cluster(RecordedReader(responses), LIVE_NS)
    assert result.notes and "could not be read" in result.notes[0]


# --- the real kubernetes client against a local stub API server ---------------------------------


PATHS = {
    f"/apis/networking.k8s.io/v1/namespaces/{LIVE_NS}/networkpolicies": "NetworkPolicy",
    f"/api/v1/namespaces/{LIVE_NS}/secrets": "Secret",
    f"/api/v1/namespaces/{LIVE_NS}/services": "Service",
    f"/api/v1/namespaces/{LIVE_NS}/serviceaccounts": "ServiceAccount",
    f"/apis/apps/v1/namespaces/{LIVE_NS}/deployments": "Deployment",
    f"/apis/apps/v1/namespaces/{LIVE_NS}/statefulsets": "StatefulSet",
    f"/apis/apps/v1/namespaces/{LIVE_NS}/daemonsets": "DaemonSet",
    f"/apis/batch/v1/namespaces/{LIVE_NS}/jobs": "Job",
    f"/apis/batch/v1/namespaces/{LIVE_NS}/cronjobs": "CronJob",
    f"/apis/networking.k8s.io/v1/namespaces/{LIVE_NS}/ingresses": "Ingress",
    f"/apis/rbac.authorization.k8s.io/v1/namespaces/{LIVE_NS}/roles": "Role",
    f"/apis/rbac.authorization.k8s.io/v1/namespaces/{LIVE_NS}/rolebindings": "RoleBinding",
    f"/api/v1/namespaces/{LIVE_NS}": "Namespace",
}


@pytest.fixture
def stub_api(tmp_path: Path) -> Iterator[tuple[Path, list[tuple[str, str, str]]]]:
    """A local HTTP server answering like the API server; records every request it gets."""
    responses = recorded()
    requests: list[tuple[str, str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            requests.append((self.command, self.path, self.headers.get("Accept", "")))
            kind = PATHS.get(self.path.split("?")[0])
            if self.command != "GET" or kind is None:
                self.send_response(405)
                self.end_headers()
                return
            body = json.dumps(responses[kind]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "stub",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "auditor", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "auditor"}}],
                "current-context": "stub",
            }
        )
    )
    try:
        yield kubeconfig, requests
    finally:
        server.shutdown()
        server.server_close()


def _use(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the client at the stub, around any proxy the machine has configured."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def test_the_kubernetes_client_only_reads_and_asks_for_secret_metadata(
    stub_api, monkeypatch
) -> None:
    kubeconfig, requests = stub_api
    _use(kubeconfig, monkeypatch)
    result = read_cluster(KubernetesReader(context="stub"), LIVE_NS)
    assert {m["kind"] for m in result.manifests} >= {
        "Namespace",
        "NetworkPolicy",
        "Secret",
        "Deployment",
    }
    assert {method for method, _, _ in requests} == {"GET"}
    assert {path for _, path, _ in requests} == set(PATHS)
    secrets = [accept for _, path, accept in requests if path.endswith("/secrets")]
    assert secrets == [METADATA_ONLY]
    drift = compare(program(), result, "fixture")
    assert ("added", f"Service/{LIVE_NS}/debug-nodeport") in {
        (c.area, c.subject) for c in drift.objects
    }


def test_an_unknown_context_is_a_clear_error(stub_api, monkeypatch) -> None:
    kubeconfig, _ = stub_api
    _use(kubeconfig, monkeypatch)
    with pytest.raises(LiveError, match="no-such-context"):
        KubernetesReader(context="no-such-context")


def test_certificate_objects_are_matched_by_their_base_name() -> None:
    """Offline, a certificate's Secret is named after a placeholder; live, after the certificate
    the engine generated. The audit compares the two as one object, references included."""
    from infra.offline.audit.live import align_issued_names

    offline = "mcp-server-billing-tls-0123456789"
    live_name = "mcp-server-billing-tls-abcdefabcd"
    declared = [
        {"kind": "Secret", "metadata": {"name": offline}},
        {"kind": "Secret", "metadata": {"name": "mcp-server-billing-platform-token-r0"}},
        {
            "kind": "Deployment",
            "metadata": {"name": "mcp-server-billing"},
            "spec": {"template": {"spec": {"volumes": [{"secret": {"secretName": offline}}]}}},
        },
    ]
    live = [{"kind": "Secret", "metadata": {"name": live_name}}]
    aligned = align_issued_names(declared, live)
    assert aligned[0]["metadata"]["name"] == live_name
    assert aligned[1] == declared[1]
    assert aligned[2]["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == live_name
    # a ConfigMap of the same base is not the Secret's counterpart; nothing live: unchanged
    assert align_issued_names(
        declared, [{"kind": "ConfigMap", "metadata": {"name": live_name}}]
    ) == (declared)
