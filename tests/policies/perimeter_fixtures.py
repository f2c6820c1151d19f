"""A small, clean environment as Kubernetes manifests, and helpers to spoil it.

It is what the program should produce for one MCP server (two tools), the tunnel,
the sandbox runners and one database: every rule passes on it, and each violating
case in the tests changes exactly one thing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from policies.rules import Resource

NS = "agent-perimeter-dev"
DOMAIN = "mcp-dev.example.com"
URL = f"https://tickets.{DOMAIN}/mcp"
DIGEST = "@sha256:" + "a" * 64
EDGE = ["198.41.192.0/19", "2606:4700:a0::/44"]
API = ["160.79.104.0/23", "2607:6bc0::/48"]
DATABASE = "10.20.0.15/32"
# Everything the fixture environment declares it reaches: the pack's `declaredOnly` allowance.
DECLARED = [*API, *EDGE, DATABASE]

Manifest = dict[str, Any]


def meta(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": NS}
    if labels:
        out["labels"] = labels
    out.update(extra)
    return out


def selector(chart: str, release: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": chart, "app.kubernetes.io/instance": release}


TICKETS = selector("mcp-server", "mcp-server-tickets")
TUNNEL = selector("mcp-tunnel", "mcp-tunnel")
SANDBOX = selector("sandbox-runner", "sandbox-runner")
PROVISIONER = selector("role-provisioner", "role-provisioner-support")


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "image": image + DIGEST,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
    }
    out.update(extra)
    return out


def secret_env(var: str, secret: str, key: str = "value") -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def pod(labels: dict[str, str], containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    spec.update(extra)
    return {"metadata": {"labels": labels}, "spec": spec}


def deployment(name: str, labels: dict[str, str], template: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, labels),
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
    }


def secret(name: str, credential: str, **annotations: str) -> Manifest:
    metadata = meta(name, {"agent-perimeter.io/credential": credential})
    if annotations:
        metadata["annotations"] = {
            f"agent-perimeter.io/{k.replace('_', '-')}": v for k, v in annotations.items()
        }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": {"value": f"<redacted:{name}/value>"},
    }


def network_policy(name: str, spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name),
        "spec": spec,
    }


def config_map(name: str, labels: dict[str, str], data: dict[str, str]) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, labels), "data": data}


ROLE_SQL = """\
-- one role per tool; passwords arrive as SCRAM verifiers
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mcp_tickets_get_ticket') THEN
    CREATE ROLE mcp_tickets_get_ticket LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mcp_tickets_export_ticket') THEN
    CREATE ROLE mcp_tickets_export_ticket LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA support TO mcp_tickets_get_ticket, mcp_tickets_export_ticket;
GRANT SELECT ON support.tickets TO mcp_tickets_get_ticket;
GRANT INSERT ON support.export_queue TO mcp_tickets_export_ticket;
"""


def agent_definition(**changes: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "mcp_servers": [{"type": "url", "name": "tickets", "url": URL}],
        "tools": [
            {
                "type": "mcp_toolset",
                "mcp_server_name": "tickets",
                "default_config": {"enabled": False},
                "configs": [
                    {
                        "name": "get_ticket",
                        "enabled": True,
                        "permission_policy": {"type": "always_allow"},
                    },
                    {
                        "name": "export_ticket",
                        "enabled": True,
                        "permission_policy": {"type": "always_ask"},
                    },
                ],
            }
        ],
    }
    definition.update(changes)
    return definition


TUNNEL_CONFIG = f"""\
listen_addr: 0.0.0.0:8443
tunnel_domain: {DOMAIN}
upstream:
  tls:
    ca_file: /etc/mcp-proxy/upstream-ca/ca.crt
    include_system_cas: false
routes:
  tickets: https://mcp-server-tickets.{NS}.svc.cluster.local:8080
"""


def _dns() -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    }


def environment() -> list[Manifest]:
    """The clean environment: zero violations of any rule, at every tier."""
    tickets_pod = pod(
        TICKETS,
        [
            container(
                "server",
                "ghcr.io/example/mcp-tickets:1.4.2",
                env=[
                    secret_env("DB_GET_TICKET", "mcp-server-tickets-db-get-ticket"),
                    secret_env("DB_EXPORT_TICKET", "mcp-server-tickets-db-export-ticket"),
                ],
                volumeMounts=[{"name": "platform-token", "mountPath": "/var/run/platform"}],
            )
        ],
        volumes=[
            {"name": "tmp", "emptyDir": {}},
            {
                "name": "platform-token",
                "projected": {
                    "sources": [{"secret": {"name": "mcp-server-tickets-platform-token"}}]
                },
            },
            {
                "name": "backend-crm-api",
                "secret": {"secretName": "mcp-server-tickets-backend-crm-api", "defaultMode": 256},
            },
        ],
    )
    tunnel_pod = pod(
        TUNNEL,
        [
            container(
                "proxy",
                "ghcr.io/example/mcp-proxy:0.9.2",
                volumeMounts=[
                    {"name": "tls", "mountPath": "/etc/mcp-gateway/tls"},
                    {"name": "upstream-ca", "mountPath": "/etc/mcp-proxy/upstream-ca"},
                ],
            ),
            container(
                "cloudflared",
                "docker.io/cloudflare/cloudflared:2026.10.0",
                envFrom=[{"secretRef": {"name": "mcp-tunnel-token"}}],
            ),
        ],
        volumes=[
            {"name": "tls", "secret": {"secretName": "mcp-tunnel-tls"}},
            {"name": "config", "configMap": {"name": "mcp-tunnel-config"}},
            {"name": "upstream-ca", "configMap": {"name": "mcp-upstream-ca-5a4f"}},
        ],
    )
    sandbox_pod = pod(
        SANDBOX,
        [
            container(
                "worker",
                "ghcr.io/example/sandbox-worker:0.7.1",
                env=[secret_env("ANTHROPIC_ENVIRONMENT_KEY", "sandbox-runner-environment-key")],
            )
        ],
    )
    provisioner_container = container(
        "provision",
        "docker.io/library/postgres:16.6-alpine",
        env=[
            secret_env("PGPASSWORD", "database-admin-support"),
            secret_env("VERIFIER_MCP_TICKETS_GET_TICKET", "role-verifiers-support", "get"),
        ],
    )
    del provisioner_container["livenessProbe"], provisioner_container["readinessProbe"]
    provisioner_pod = pod(
        PROVISIONER | {"app.kubernetes.io/component": "role-provisioner"},
        [provisioner_container],
        restartPolicy="Never",
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": NS,
                "labels": {
                    f"pod-security.kubernetes.io/{mode}": "restricted"
                    for mode in ("enforce", "audit", "warn")
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": meta("quota"),
            "spec": {"hard": {"services.nodeports": "0", "services.loadbalancers": "0"}},
        },
        network_policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        network_policy(
            "allow-dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [_dns()]}
        ),
        network_policy(
            "mcp-server-tickets",
            {
                "podSelector": {"matchLabels": TICKETS},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": TUNNEL}}],
                        "ports": [{"port": 8080, "protocol": "TCP"}],
                    }
                ],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": DATABASE}}],
                        "ports": [{"port": 5432, "protocol": "TCP"}],
                    }
                ],
            },
        ),
        network_policy(
            "mcp-tunnel",
            {
                "podSelector": {"matchLabels": TUNNEL},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": c}} for c in EDGE],
                        "ports": [
                            {"port": 7844, "protocol": "TCP"},
                            {"port": 7844, "protocol": "UDP"},
                        ],
                    },
                    {
                        "to": [{"ipBlock": {"cidr": c}} for c in API],
                        "ports": [{"port": 443, "protocol": "TCP"}],
                    },
                    {
                        "to": [{"podSelector": {"matchLabels": TICKETS}}],
                        "ports": [{"port": 8080, "protocol": "TCP"}],
                    },
                ],
            },
        ),
        network_policy(
            "sandbox-runner",
            {
                "podSelector": {"matchLabels": SANDBOX},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": c}} for c in API],
                        "ports": [{"port": 443, "protocol": "TCP"}],
                    },
                ],
            },
        ),
        network_policy(
            "role-provisioner-support",
            {
                "podSelector": {"matchLabels": PROVISIONER},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": DATABASE}}],
                        "ports": [{"port": 5432, "protocol": "TCP"}],
                    }
                ],
            },
        ),
        secret(
            "mcp-server-tickets-db-get-ticket",
            "database-role",
            database_role="mcp_tickets_get_ticket",
        ),
        secret(
            "mcp-server-tickets-db-export-ticket",
            "database-role",
            database_role="mcp_tickets_export_ticket",
        ),
        secret("mcp-server-tickets-platform-token", "platform-token", mcp_server_url=URL),
        secret(
            "mcp-server-tickets-backend-crm-api",
            "backend",
            backend="crm-api",
            reader="mcp-server-tickets",
        ),
        secret("mcp-tunnel-token", "tunnel-token"),
        secret("mcp-tunnel-tls", "tunnel-tls"),
        secret("sandbox-runner-environment-key", "environment-key"),
        secret("database-admin-support", "database-admin"),
        secret("role-verifiers-support", "role-verifiers"),
        config_map(
            "role-sql-support", {"agent-perimeter.io/role-sql": "true"}, {"roles.sql": ROLE_SQL}
        ),
        config_map(
            "agent-definition",
            {"agent-perimeter.io/agent-definition": "true"},
            {"agent-definition.json": json.dumps(agent_definition())},
        ),
        config_map("mcp-tunnel-config", TUNNEL, {"config.yaml": TUNNEL_CONFIG}),
        deployment("mcp-server-tickets", TICKETS, tickets_pod),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("mcp-server-tickets", TICKETS),
            "spec": {"selector": TICKETS, "ports": [{"port": 8080, "targetPort": 8080}]},
        },
        deployment("mcp-tunnel", TUNNEL, tunnel_pod),
        deployment("sandbox-runner", SANDBOX, sandbox_pod),
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta(
                "role-provisioner-support",
                PROVISIONER | {"app.kubernetes.io/component": "role-provisioner"},
            ),
            "spec": {"backoffLimit": 2, "template": provisioner_pod},
        },
    ]


def resources(manifests: Iterable[Manifest]) -> list[Resource]:
    return [Resource.from_manifest(m) for m in manifests]


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def clone(manifest: Manifest, name: str) -> Manifest:
    twin = copy.deepcopy(manifest)
    twin["metadata"]["name"] = name
    return twin


def first_container(workload: Manifest) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]["containers"][0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]
