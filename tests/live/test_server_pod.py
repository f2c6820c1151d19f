"""The walkthrough's MCP server (dev's `exports`) as a real pod, on roles the real provisioning
Job made: the Job's objects exactly as `pulumi up --stack dev` creates them (its SQL, the
roles' verifiers, the image built here) run against a real PostgreSQL; then the server's
chart, its tool credentials the program's own, answers a tool call through the pod network:
from a pod with the tunnel's labels, by the Service's name with the certificate verified, as
the tunnel's proxy calls it; and never from a pod its ingress policy does not name.

Dev's NetworkPolicies are in force, and the database is where dev declares it (10.20.0.15,
a stand-in address behind the containment's veth): the Job's and the server's connections
cross the policy agent, and the suite's PostgreSQL (TLS on, for dev's sslmode=require)
answers there. Changed from dev, and why: the admin password is that server's; the serving
certificate is issued here (the program's is made at `up`)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_types import CallToolResult

from infra.offline.mocked import CHART_TYPE, chart_release, helm_template, synthesize
from infra.pure import naming
from infra.pure.config import PerimeterConfig, load
from servers.runtime.app import TENANT_META_KEY
from tests.certificates.issued import make_ca, make_serving
from tests.database.conftest import Server, running_pg
from tests.live.harness import mcp_call
from tests.live.harness.containment import LINK_HOST, LINK_NS
from tests.live.harness.session import Live, stand_in
from tests.servers.harness import run

NS = "ap-live-server"
OUTSIDER = "ap-live-outsider"
TUNNEL_LABELS = naming.tunnel_selector()  # what the server's ingress policy names
SERVER = "exports"
DATABASE = "support"
TENANT, CUSTOMER = "acme", "cus_AAAAAAAAAAA1"  # seeded by tests/database (SCHEMA_SQL)


def _in_namespace(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest | {"metadata": manifest["metadata"] | {"namespace": NS}}


def _objects(config: PerimeterConfig, pg: Server) -> tuple[list[Any], list[Any], str]:
    """The provisioning objects (admin password filled in), the server's chart render and
    Secrets (serving certificate issued here), and the CA that certificate chains to."""
    synthesis = synthesize(config, render_charts=False)
    provisioner = naming.provisioner_name(DATABASE)
    release = naming.mcp_release(SERVER)
    provisioning, secrets, rendered = [], [], []
    _, ca = make_ca("agent-perimeter live serving CA")
    _, leaf = make_serving(ca, dns_names=[naming.mcp_service_host(NS, SERVER)])
    for resource in synthesis.resources:
        inputs = resource.inputs
        if resource.type == CHART_TYPE and chart_release(resource).name == release:
            chart = chart_release(resource)
            rendered = helm_template(chart.name, chart.chart, NS, chart.values)
            continue
        if not resource.type.startswith("kubernetes:") or inputs.get("kind") == "NetworkPolicy":
            continue
        name = inputs.get("metadata", {}).get("name", "")
        if name == f"{provisioner}-admin":
            provisioning.append(
                _in_namespace(
                    inputs | {"stringData": inputs["stringData"] | {"password": pg.admin_password}}
                )
            )
        elif name.startswith(provisioner):
            provisioning.append(_in_namespace(inputs))
        elif inputs.get("kind") == "Secret" and name.startswith(release + "-"):
            data = dict(inputs["stringData"])
            if "tls.crt" in data:
                data = {"tls.crt": leaf["cert_pem"], "tls.key": leaf["key_pem"]}
            elif "credential" in data:
                data = {"credential": "a" * 64}  # the export store's signing key
            secrets.append(_in_namespace(inputs | {"stringData": data}))
    assert provisioning and rendered and secrets, "dev no longer provisions and serves exports"
    return provisioning, [*secrets, *rendered], str(ca["cert_pem"])


@pytest.fixture
def database(live: Live) -> Iterator[tuple[Server, str]]:
    """The suite's PostgreSQL, served at dev's database address; and the address its
    connections through the fence come from."""
    target = stand_in("dev", f"database {DATABASE}")
    with running_pg() as pg:
        pg.serve_pods(LINK_HOST, f"{LINK_NS}/32")
        with live.containment.forward(target.address, target.port, pg.port) as source:
            yield pg, source


def test_the_export_server_pod_answers_on_roles_the_real_job_made(
    live: Live, database: tuple[Server, str]
) -> None:
    pg, fenced_source = database
    config = load(stack="dev")
    provisioning, serving, ca_pem = _objects(config, pg)
    tool_roles = {
        naming.tool_role(server, tool)
        for server in config.mcp_servers
        if server.database == DATABASE
        for tool in server.tools
    }
    live.node.restricted_namespace(NS)
    try:
        live.fence(NS, "dev")
        live.node.apply(provisioning)
        (job,) = [o["metadata"]["name"] for o in provisioning if o["kind"] == "Job"]
        live.node.wait(NS, f"job/{job}", "complete", 120)
        made = set(
            pg.superuser(
                "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname LIKE 'mcp\\_%'"
            ).rows
        )
        assert made == tool_roles, "the Job did not make exactly the tools' roles"

        live.node.apply(serving)
        release = naming.mcp_release(SERVER)
        # Ready only when every tool's role has logged in from the pod, through the fence.
        live.node.wait(NS, f"deployment/{release}", "available", 120)
        pod = live.node.pod_of(NS, naming.mcp_server_selector(SERVER))
        ip = pod["status"]["podIP"]
        (token_secret,) = [
            s
            for s in serving
            if s["kind"] == "Secret" and "platform-token" in s["metadata"]["name"]
        ]
        token = token_secret["stringData"]["token"]
        result = _call(f"https://{ip}:{_port(serving, release)}/mcp", token, ca_pem)
        assert not result.is_error, result.content
        job_seen = json.loads(result.content[0].text)["job"]  # type: ignore[union-attr]
        assert job_seen["customer_id"] == CUSTOMER, job_seen

        # What the tunnel's proxy does: a pod with the tunnel's labels calls the Service by
        # its name, certificate verified; the same call from a pod the server's ingress does
        # not name (another namespace, its egress open) never connects.
        url = naming.mcp_in_cluster_origin(NS, config.server(SERVER), tls=True) + "/mcp"
        image = live.tools.images["mcp-exports"].ref
        phase, out = _call_from_pod(live, NS, TUNNEL_LABELS, image, url, token, ca_pem)
        assert phase == "Succeeded", out
        called = json.loads(out.strip().splitlines()[-1])
        assert called["is_error"] is False and CUSTOMER in called["text"], called
        live.node.restricted_namespace(OUTSIDER)
        phase, out = _call_from_pod(live, OUTSIDER, {}, image, url, token, ca_pem)
        assert phase == "Failed" and '"failed"' in out, f"the server answered a stranger: {out}"

        sessions = pg.superuser(
            f"SELECT DISTINCT usename FROM pg_stat_activity WHERE client_addr = '{fenced_source}'"
        ).rows
        assert set(sessions) <= tool_roles and sessions, f"pod sessions as {sessions}"
        log = live.node.kubectl("-n", NS, "logs", pod["metadata"]["name"]).stdout
        assert token not in log and pg.admin_password not in log
    finally:
        for namespace in (NS, OUTSIDER):
            live.node.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _call_from_pod(
    live: Live,
    namespace: str,
    labels: dict[str, str],
    image: str,
    url: str,
    token: str,
    ca_pem: str,
) -> tuple[str, str]:
    """One tool call from a one-shot pod under `restricted`, holding only the bearer and the
    CA: its phase and what `mcp_call.py` printed."""
    name = "caller"
    meta = {"name": name, "namespace": namespace}
    script = Path(mcp_call.__file__).read_text()
    live.node.apply(
        [
            {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
             "stringData": {"token": token, "ca.crt": ca_pem}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
             "data": {"mcp_call.py": script}},
        ]
    )  # fmt: skip
    container = {
        "name": "call",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["python", "/call/mcp_call.py"],
        "env": [
            {"name": "MCP_CALL_URL", "value": url},
            {"name": "MCP_CALL_TOOL", "value": "get_latest_export_job"},
            {"name": "MCP_CALL_ARGUMENTS", "value": json.dumps({"customer_id": CUSTOMER})},
            {"name": "MCP_CALL_META", "value": json.dumps({TENANT_META_KEY: TENANT})},
        ],
        "volumeMounts": [{"name": "call", "mountPath": "/call", "readOnly": True}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta | {"labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [
                {
                    "name": "call",
                    "projected": {
                        "sources": [{"secret": {"name": name}}, {"configMap": {"name": name}}]
                    },
                }
            ],
        },
    }
    return live.node.run_to_end(namespace, pod, timeout=120)


def _port(objects: list[Any], release: str) -> int:
    """The server's container port (its Service targets it by name)."""
    (deployment,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == release
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return int(container["ports"][0]["containerPort"])


def _call(url: str, token: str, ca_pem: str) -> CallToolResult:
    """One tool call with the official client. The certificate is checked against the CA that
    issued it alone; its name is the Service's, and this call dials the pod's address."""
    from infra.offline.audit.advertised import mcp_session

    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False

    async def go() -> CallToolResult:
        async with mcp_session(url, token, context) as client:
            return await client.call_tool(
                "get_latest_export_job",
                {"customer_id": CUSTOMER},
                meta={TENANT_META_KEY: TENANT},  # type: ignore[arg-type]
            )

    return run(go())
