"""Bad values stop `helm template` with a message naming the field, before anything renders.

Each row: chart, values (or --set arguments), and fragments helm's error must contain.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, NamedTuple

import pytest

from .helm_render import HelmFailed, template

pytestmark = pytest.mark.helm

GOOD_DIGEST = "sha256:" + "ab" * 32


class Case(NamedTuple):
    chart: str
    values: dict[str, Any]
    fragments: tuple[str, ...]
    set_args: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.chart}: {' '.join(self.fragments)}"


def _case(
    chart: str, values: dict[str, Any], *fragments: str, set_args: tuple[str, ...] = ()
) -> Case:
    return Case(chart, values, fragments, set_args)


CASES = [
    # --- mcp-server ---------------------------------------------------------------------
    _case("mcp-server", {"replicas": 2}, "additional properties 'replicas' not allowed"),
    _case(
        "mcp-server", {}, "at '/service'", "'type' not allowed", set_args=("service.type=NodePort",)
    ),
    _case("mcp-server", {"service": {"type": "LoadBalancer"}}, "at '/service'", "'type'"),
    _case("mcp-server", {"service": {"nodePort": 30080}}, "at '/service'", "'nodePort'"),
    _case(
        "mcp-server",
        {"service": {"externalIPs": ["203.0.113.7"]}},
        "at '/service'",
        "'externalIPs'",
    ),
    _case("mcp-server", {}, "at '/replicaCount'", "minimum", set_args=("replicaCount=-1",)),
    _case("mcp-server", {"replicaCount": 1.5}, "at '/replicaCount'"),
    _case("mcp-server", {"image": {"digest": "sha256:abc"}}, "at '/image/digest'"),
    _case("mcp-server", {"image": {"digest": "ab" * 32}}, "at '/image/digest'"),
    _case("mcp-server", {"image": {"tag": "", "digest": ""}}, "at '/image'", "anyOf"),
    _case(
        "mcp-server", {"image": {"repository": "GHCR.io/Example/Server"}}, "at '/image/repository'"
    ),
    _case("mcp-server", {"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    _case("mcp-server", {"containerPort": 80}, "at '/containerPort'", "minimum"),
    _case("mcp-server", {"serverName": "Tickets_1"}, "at '/serverName'"),
    _case("mcp-server", {"mcpPath": "mcp"}, "at '/mcpPath'"),
    _case("mcp-server", {"database": {"sslmode": "prefer"}}, "at '/database/sslmode'"),
    _case("mcp-server", {"database": {"password": "hunter2"}}, "at '/database'", "'password'"),
    _case("mcp-server", {"database": {"host": "db host"}}, "at '/database/host'"),
    _case(
        "mcp-server",
        {"toolCredentials": [{"tool": "get-ticket", "role": "r", "secretName": "s"}]},
        "at '/toolCredentials/0/tool'",
    ),
    _case(
        "mcp-server",
        {"toolCredentials": [{"tool": "get_ticket", "role": "r"}]},
        "at '/toolCredentials/0'",
        "secretName",
    ),
    _case(
        "mcp-server",
        {"toolCredentials": [{"tool": "t", "role": "r", "secretName": "s", "password": "x"}]},
        "at '/toolCredentials/0'",
        "'password'",
    ),
    _case("mcp-server", {"platformToken": {"token": "abc"}}, "at '/platformToken'", "'token'"),
    _case(
        "mcp-server",
        {"platformToken": {"secretName": "Bad_Name"}},
        "at '/platformToken/secretName'",
    ),
    _case(
        "mcp-server",
        {"commonLabels": {"app.kubernetes.io/name": "other"}},
        "at '/commonLabels/app.kubernetes.io~1name'",
    ),
    _case("mcp-server", {"commonLabels": {"team": "two words"}}, "at '/commonLabels/team'"),
    _case("mcp-server", {"podLabels": {"bad key!": "x"}}, "at '/podLabels'", "'bad key!'"),
    _case("mcp-server", {"podAnnotations": {"checksum/x": 1}}, "at '/podAnnotations/checksum~1x'"),
    _case("mcp-server", {"resources": {"limits": {"cpu": "lots"}}}, "at '/resources/limits/cpu'"),
    _case("mcp-server", {"resources": {"limits": {"gpu": "1"}}}, "at '/resources/limits'", "'gpu'"),
    _case(
        "mcp-server",
        {"podDisruptionBudget": {"maxUnavailable": 0}},
        "at '/podDisruptionBudget/maxUnavailable'",
    ),
    _case(
        "mcp-server", {"podSecurityContext": {"runAsUser": 0}}, "at '/podSecurityContext/runAsUser'"
    ),
    _case(
        "mcp-server",
        {"podSecurityContext": {"privileged": True}},
        "at '/podSecurityContext'",
        "'privileged'",
    ),
    _case("mcp-server", {"securityContext": {"runAsUser": 0}}, "'securityContext' not allowed"),
    _case("mcp-server", {"hostNetwork": True}, "'hostNetwork' not allowed"),
    _case("mcp-server", {"nameOverride": "other"}, "'nameOverride' not allowed"),
    _case(
        "mcp-server",
        {"probes": {"livenessPath": "livez", "readinessPath": "/readyz"}},
        "at '/probes/livenessPath'",
    ),
    _case(
        "mcp-server", {"probes": {"path": "/healthz"}}, "additional properties 'path' not allowed"
    ),
    _case("mcp-server", {"tools": ["get;drop"]}, "at '/tools/0'"),
    _case("mcp-server", {"tmp": {"sizeLimit": "lots"}}, "at '/tmp/sizeLimit'"),
    _case("mcp-server", {"service": None}, "missing property 'service'"),
    _case("mcp-server", {"tls": {"secretName": "Bad_Name"}}, "at '/tls/secretName'"),
    _case("mcp-server", {"tls": {"certificate": "x"}}, "at '/tls'", "'certificate'"),
    _case(
        "mcp-server",
        {"extraEnv": [{"name": "API", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        "at '/extraEnv/0'",
        "'valueFrom'",
    ),
    _case(
        "mcp-server",
        {"extraEnv": [{"name": "log-format", "value": "json"}]},
        "at '/extraEnv/0/name'",
    ),
    _case(
        "mcp-server",
        {"extraEnv": [{"name": "BILLING_API_TOKEN", "value": "t"}]},
        "at '/extraEnv/0/name'",
    ),
    _case(
        "mcp-server", {"extraEnv": [{"name": "DB_PASSWORD", "value": "p"}]}, "at '/extraEnv/0/name'"
    ),
    _case(
        "mcp-server",
        {"extraEnv": [{"name": "MCP_BEARER_TOKEN_DIR", "value": "/tmp"}]},
        "at '/extraEnv/0/name'",
    ),
    _case(
        "mcp-server",
        {"extraEnv": [{"name": "BACKEND_X_HOST", "value": "evil"}]},
        "at '/extraEnv/0/name'",
    ),
    _case("mcp-server", {"extraEnv": [{"name": "PORT", "value": 8080}]}, "at '/extraEnv/0/value'"),
    _case("mcp-server", {"extraArgs": ["--ok", 3]}, "at '/extraArgs/1'"),
    _case("mcp-server", {"configFiles": {"../etc/passwd": "x"}}, "at '/configFiles'"),
    _case("mcp-server", {"configFiles": {".hidden": "x"}}, "at '/configFiles'"),
    _case("mcp-server", {"configFiles": {"a.yaml": {"nested": 1}}}, "at '/configFiles/a.yaml'"),
    _case(
        "mcp-server",
        {"backends": [{"name": "Billing", "host": "b.example.com", "port": 443, "tls": True}]},
        "at '/backends/0/name'",
    ),
    _case(
        "mcp-server",
        {"backends": [{"name": "billing", "host": "b.example.com", "port": 443}]},
        "at '/backends/0'",
        "tls",
    ),
    _case(
        "mcp-server",
        {"backends": [{"name": "billing", "host": "", "port": 443, "tls": True}]},
        "at '/backends/0/host'",
    ),
    _case(
        "mcp-server",
        {"backends": [{"name": "billing", "host": "b", "port": 70000, "tls": True}]},
        "at '/backends/0/port'",
    ),
    _case(
        "mcp-server",
        {"backendCredentials": [{"backend": "billing", "secretName": "s", "value": "x"}]},
        "at '/backendCredentials/0'",
        "'value'",
    ),
    _case("mcp-server", {"database": {"host": 5}}, "at '/database/host'"),
    # --- mcp-tunnel ---------------------------------------------------------------------
    _case("mcp-tunnel", {"service": {"port": 8443}}, "'service' not allowed"),
    _case(
        "mcp-tunnel",
        {"upstream": {"tls": {"caConfigMap": "Bad CA"}}},
        "at '/upstream/tls/caConfigMap'",
    ),
    _case("mcp-tunnel", {"upstream": {"tls": {"caFile": "/x"}}}, "at '/upstream/tls'", "'caFile'"),
    _case(
        "mcp-tunnel",
        {"routes": {"tickets": "http://mcp-server-tickets.ns.svc:8080/mcp"}},
        "at '/routes/tickets'",
    ),
    _case("mcp-tunnel", {"routes": {"tickets": "mcp-server-tickets:8080"}}, "at '/routes/tickets'"),
    _case(
        "mcp-tunnel", {"routes": {"tickets": "http://mcp-server-tickets"}}, "at '/routes/tickets'"
    ),
    _case("mcp-tunnel", {"routes": {"tickets": "ftp://files:21"}}, "at '/routes/tickets'"),
    _case("mcp-tunnel", {"routes": {"Tickets!": "http://a:8080"}}, "at '/routes'", "'Tickets!'"),
    _case("mcp-tunnel", {"upstream": {"allowedIps": ["0.0.0.0/0"]}}, "at '/upstream/allowedIps/0'"),
    _case("mcp-tunnel", {"upstream": {"allowedIps": ["::/0"]}}, "at '/upstream/allowedIps/0'"),
    _case(
        "mcp-tunnel",
        {"upstream": {"allowedIps": ["169.254.0.0/16"]}},
        "at '/upstream/allowedIps/0'",
    ),
    _case("mcp-tunnel", {"upstream": {"allowedIps": ["10.0.0.0"]}}, "at '/upstream/allowedIps/0'"),
    _case("mcp-tunnel", {"upstream": {"allowedIps": []}}, "at '/upstream/allowedIps'", "minItems"),
    _case(
        "mcp-tunnel",
        {"upstream": {"disableIpValidation": True}},
        "at '/upstream'",
        "'disableIpValidation'",
    ),
    _case("mcp-tunnel", {"tunnel": {"id": "tunnel-1"}}, "at '/tunnel/id'"),
    _case("mcp-tunnel", {"tunnel": {"token": "eyJhIjoi"}}, "at '/tunnel'", "'token'"),
    _case("mcp-tunnel", {"tunnel": {"domain": "https://mcp.example.com"}}, "at '/tunnel/domain'"),
    _case("mcp-tunnel", {"proxy": {"logLevel": "verbose"}}, "at '/proxy/logLevel'"),
    _case("mcp-tunnel", {"proxy": {"shutdownTimeout": "30"}}, "at '/proxy/shutdownTimeout'"),
    _case("mcp-tunnel", {"proxy": {"listenPort": 443}}, "at '/proxy/listenPort'"),
    _case(
        "mcp-tunnel",
        {"cloudflared": {"image": {"digest": "sha256:xyz"}}},
        "at '/cloudflared/image/digest'",
    ),
    _case(
        "mcp-tunnel",
        {"cloudflared": {"args": ["--loglevel", "debug"]}},
        "at '/cloudflared'",
        "'args'",
    ),
    _case("mcp-tunnel", {"replicaCount": 0}, "at '/replicaCount'"),
    _case(
        "mcp-tunnel",
        {"terminationGracePeriodSeconds": 20},
        "terminationGracePeriodSeconds: 20 must exceed",
    ),
    # --- sandbox-runner -----------------------------------------------------------------
    _case("sandbox-runner", {"service": {"port": 80}}, "'service' not allowed"),
    _case("sandbox-runner", {"replicaCount": 3}, "'replicaCount' not allowed"),
    _case("sandbox-runner", {"environment": {"id": "prod"}}, "at '/environment/id'"),
    _case("sandbox-runner", {"environment": {"key": "sk-ant-xyz"}}, "at '/environment'", "'key'"),
    _case("sandbox-runner", {"worker": {"logFormat": "xml"}}, "at '/worker/logFormat'"),
    _case("sandbox-runner", {"worker": {"maxIdle": "forever"}}, "at '/worker/maxIdle'"),
    _case("sandbox-runner", {"worker": {"workdir": "/tmp"}}, "at '/worker/workdir'"),
    _case("sandbox-runner", {"worker": {"workdir": "workspace"}}, "at '/worker/workdir'"),
    _case("sandbox-runner", {"worker": {"runTimeoutSeconds": 0}}, "at '/worker/runTimeoutSeconds'"),
    _case(
        "sandbox-runner",
        {},
        "at '/autoscaling/minReplicas'",
        set_args=("autoscaling.minReplicas=-1",),
    ),
    _case(
        "sandbox-runner",
        {"autoscaling": {"targetCPUUtilizationPercentage": 150}},
        "at '/autoscaling/targetCPUUtilizationPercentage'",
    ),
    _case(
        "sandbox-runner",
        {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
        "autoscaling.minReplicas (3) must not exceed autoscaling.maxReplicas (2)",
    ),
    _case("sandbox-runner", {"runtimeClassName": "Bad Class"}, "at '/runtimeClassName'"),
    _case("sandbox-runner", {"mcpServers": [{"name": "tickets"}]}, "at '/mcpServers/0'", "url"),
    _case(
        "sandbox-runner",
        {"mcpServers": [{"name": "tickets", "url": "ftp://x/y"}]},
        "at '/mcpServers/0/url'",
    ),
    _case("sandbox-runner", {"workspace": {"sizeLimit": "2GB"}}, "at '/workspace/sizeLimit'"),
    _case("sandbox-runner", {"probes": {"command": ["true"]}}, "'probes' not allowed"),
    _case("sandbox-runner", {"worker": {"command": []}}, "at '/worker/command'"),
    _case("sandbox-runner", {"worker": {"runTimeoutSeconds": 5}}, "at '/worker/runTimeoutSeconds'"),
    _case("sandbox-runner", {"health": {"port": 80}}, "at '/health/port'"),
    _case(
        "sandbox-runner",
        {"autoscaling": {"scaleDown": {"periodSeconds": 3600}}},
        "at '/autoscaling/scaleDown/periodSeconds'",
    ),
    _case(
        "sandbox-runner",
        {"terminationGracePeriodSeconds": 120},
        "terminationGracePeriodSeconds (120) must be at least "
        "worker.runTimeoutSeconds + worker.drainSeconds (1830)",
    ),
    _case("sandbox-runner", {"image": {"digest": "sha256:" + "AB" * 32}}, "at '/image/digest'"),
]


def _stderr_of(case: Case) -> str | None:
    """helm's error for one case, or None when it (wrongly) rendered."""
    extra = [arg for pair in case.set_args for arg in ("--set", pair)]
    try:
        template(case.chart, case.values, extra_args=extra)
    except HelmFailed as failed:
        return failed.stderr
    return None


@cache
def _all_outcomes() -> tuple[str | None, ...]:
    """Run every case once, concurrently: each is a ~0.1 s helm process, mostly start-up."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return tuple(pool.map(_stderr_of, CASES))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.id for case in CASES])
def test_bad_values_are_rejected_naming_the_field(index: int) -> None:
    stderr = _all_outcomes()[index]
    assert stderr is not None, f"helm rendered {CASES[index].values} without complaint"
    for fragment in CASES[index].fragments:
        assert fragment in stderr


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        ("mcp-server", {"image": {"tag": "", "digest": GOOD_DIGEST}}),
        ("mcp-server", {"podDisruptionBudget": {"maxUnavailable": "50%"}}),
        ("mcp-server", {"database": None}),
        ("mcp-server", {"extraEnv": [{"name": "LOG_FORMAT", "value": "json"}]}),
        ("mcp-server", {"configFiles": {"settings.yaml": "a: 1\n", "rules_v2.json": "{}"}}),
        ("mcp-tunnel", {"upstream": {"tls": {"caConfigMap": "mcp-upstream-ca"}}}),
        ("mcp-tunnel", {"routes": {"billing.internal.example.com": "https://10.1.2.3:8443"}}),
        ("mcp-tunnel", {"upstream": {"allowedIps": ["10.96.0.0/12", "fd00::/8"]}}),
        ("sandbox-runner", {"resources": {"limits": {"cpu": "2", "memory": "4Gi"}}}),
    ],
)
def test_good_values_near_the_edges_are_accepted(chart: str, values: dict[str, Any]) -> None:
    """The schema is strict, not paranoid: legitimate variants still render."""
    assert "kind: Deployment" in template(chart, values)
