"""Every rule: violating cases report exactly that rule on exactly that resource; passing cases
report nothing. Each case spoils the clean environment in one way."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from policies.rules import ALL_RULES, evaluate
from tests.policies import perimeter_fixtures as fx

Mutation = Callable[[list[fx.Manifest]], None]
NS = fx.NS


@dataclass(frozen=True)
class Case:
    rule: str
    mutate: Mutation
    refs: frozenset[str]  # empty: the rule must pass
    why: str
    # Other rules the same fault breaks by its nature (an egress to 0.0.0.0/0 also reaches the
    # metadata endpoint); every other rule must pass.
    also: frozenset[str] = frozenset()

    def __str__(self) -> str:
        return f"{self.rule}: {self.why}"


def bad(rule: str, why: str, *refs: str, also: Iterable[str] = ()) -> Callable[[Mutation], Case]:
    return lambda mutate: Case(rule, mutate, frozenset(refs), why, frozenset(also))


def good(rule: str, why: str, also: Iterable[str] = ()) -> Callable[[Mutation], Case]:
    return lambda mutate: Case(rule, mutate, frozenset(), why, frozenset(also))


def escalating_init_container() -> dict[str, Any]:
    """Hardened in every other way: only the escalation is wrong."""
    container = fx.container("init", "busybox:1")
    container["securityContext"]["allowPrivilegeEscalation"] = True
    return container


def tickets(m: list[fx.Manifest]) -> fx.Manifest:
    return fx.find(m, "Deployment", "mcp-server-tickets")


def add(*objects: fx.Manifest) -> Mutation:
    return lambda m: m.extend(objects)


def service(name: str, spec: dict) -> fx.Manifest:
    return {"apiVersion": "v1", "kind": "Service", "metadata": fx.meta(name), "spec": spec}


def set_service(**spec: object) -> Mutation:
    return lambda m: fx.find(m, "Service", "mcp-server-tickets")["spec"].update(spec)


def set_pod(**spec: object) -> Mutation:
    return lambda m: fx.pod_spec(tickets(m)).update(spec)


def set_container(**fields: object) -> Mutation:
    return lambda m: fx.first_container(tickets(m)).update(fields)


def set_security(**fields: object) -> Mutation:
    return lambda m: fx.first_container(tickets(m))["securityContext"].update(fields)


def egress_to(*peers: dict, ports: bool = True) -> Mutation:
    rule: dict = {"to": list(peers)} if peers else {}
    if ports:
        rule["ports"] = [{"port": 443, "protocol": "TCP"}]
    return lambda m: fx.find(m, "NetworkPolicy", "sandbox-runner")["spec"]["egress"].append(rule)


def declare_direct(*servers: str) -> Mutation:
    """The sandbox pool's worker is given these servers to call, as `direct_mcp_access` does."""
    entries = [
        {"name": s.removeprefix("mcp-server-"), "url": f"https://{s}:8080/mcp"} for s in servers
    ]

    def mutate(m: list[fx.Manifest]) -> None:
        worker = fx.first_container(fx.find(m, "Deployment", "sandbox-runner"))
        worker.setdefault("env", []).append({"name": "MCP_SERVERS", "value": json.dumps(entries)})

    return mutate


def declare_access(access: dict[str, str]) -> Mutation:
    """The tickets server's pods declare each tool's access, as the program writes it."""

    def mutate(m: list[fx.Manifest]) -> None:
        template = tickets(m)["spec"]["template"]
        annotations = template["metadata"].setdefault("annotations", {})
        annotations["agent-perimeter.io/tool-access"] = json.dumps(access, sort_keys=True)

    return mutate


def ingress_from(*peers: dict) -> Mutation:
    rule: dict = {"from": list(peers)} if peers else {"ports": [{"port": 8080}]}
    return lambda m: fx.find(m, "NetworkPolicy", "mcp-server-tickets")["spec"]["ingress"].append(
        rule
    )


SCRAPER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def tunnel_ingress(*peers: dict, ports: list | None = None, policy: str = "mcp-tunnel") -> Mutation:
    rule: dict = {"from": list(peers)}
    if ports is not None:
        rule["ports"] = ports
    return lambda m: (
        fx.find(m, "NetworkPolicy", policy)["spec"].setdefault("ingress", []).append(rule)
    )


def read_secret(workload: str, secret: str, how: str = "env") -> Mutation:
    def mutate(m: list[fx.Manifest]) -> None:
        target = next(x for x in m if x["metadata"]["name"] == workload and "template" in x["spec"])
        spec = fx.pod_spec(target)
        if how == "env":
            spec["containers"][0].setdefault("env", []).append(fx.secret_env("X", secret))
        elif how == "envFrom":
            spec["containers"][0].setdefault("envFrom", []).append({"secretRef": {"name": secret}})
        elif how == "volume":
            spec["volumes"].append({"name": "x", "secret": {"secretName": secret}})
        else:
            spec["volumes"].append(
                {"name": "x", "projected": {"sources": [{"secret": {"name": secret}}]}}
            )

    return mutate


def role_sql(text: str) -> Mutation:
    return lambda m: fx.find(m, "ConfigMap", "role-sql-support")["data"].update({"roles.sql": text})


def append_sql(text: str) -> Mutation:
    return lambda m: fx.find(m, "ConfigMap", "role-sql-support")["data"].update(
        {"roles.sql": fx.ROLE_SQL + text}
    )


def definition(value: object) -> Mutation:
    text = value if isinstance(value, str) else json.dumps(value)
    return lambda m: fx.find(m, "ConfigMap", "agent-definition")["data"].update(
        {"agent-definition.json": text}
    )


def remove(kind: str, name: str) -> Mutation:
    return lambda m: m.remove(fx.find(m, kind, name))


def tunnel_config(text: str) -> Mutation:
    return lambda m: fx.find(m, "ConfigMap", "mcp-tunnel-config")["data"].update(
        {"config.yaml": text}
    )


def annotate(kind: str, name: str, **annotations: str) -> Mutation:
    return lambda m: fx.find(m, kind, name)["metadata"]["annotations"].update(annotations)


def nothing(m: list[fx.Manifest]) -> None:
    return None


SVC = f"Service/{NS}/mcp-server-tickets"
DEPLOY = f"Deployment/{NS}/mcp-server-tickets"
SANDBOX_NP = f"NetworkPolicy/{NS}/sandbox-runner"
TICKETS_NP = f"NetworkPolicy/{NS}/mcp-server-tickets"
TUNNEL_NP = f"NetworkPolicy/{NS}/mcp-tunnel"
ROLE_SQL = f"ConfigMap/{NS}/role-sql-support"
AGENT = f"ConfigMap/{NS}/agent-definition"
TUNNEL_CM = f"ConfigMap/{NS}/mcp-tunnel-config"
GET_SECRET = f"Secret/{NS}/mcp-server-tickets-db-get-ticket"
DUP_ROLE = "mcp_tickets_get_ticket"
ROUTE_OK = "https://mcp-server-tickets:8080"
BACKEND_SECRET = "mcp-server-tickets-backend-crm-api"

CASES: list[Case] = [
    # --- no inbound ---
    bad("service-cluster-ip-only", "NodePort", SVC)(set_service(type="NodePort")),
    bad("service-cluster-ip-only", "LoadBalancer", SVC)(set_service(type="LoadBalancer")),
    bad("service-cluster-ip-only", "ExternalName", SVC)(
        set_service(type="ExternalName", externalName="db.example.com")
    ),
    bad("service-cluster-ip-only", "externalIPs", SVC)(set_service(externalIPs=["203.0.113.7"])),
    bad("service-cluster-ip-only", "loadBalancerSourceRanges", SVC)(
        set_service(loadBalancerSourceRanges=["0.0.0.0/0"])
    ),
    good("service-cluster-ip-only", "explicit ClusterIP, headless")(
        set_service(type="ClusterIP", clusterIP="None")
    ),
    bad("no-ingress", "an Ingress", f"Ingress/{NS}/public")(
        add(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": fx.meta("public"),
                "spec": {"defaultBackend": {"service": {"name": "mcp-server-tickets"}}},
            }
        )
    ),
    good("no-ingress", "an IngressClass is not a route")(
        add(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": "x"},
            }
        )
    ),
    bad("no-gateway-api", "an HTTPRoute", f"HTTPRoute/{NS}/tickets")(
        add(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": fx.meta("tickets"),
                "spec": {},
            }
        )
    ),
    bad("no-gateway-api", "a Gateway", f"Gateway/{NS}/edge")(
        add(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": fx.meta("edge"),
                "spec": {},
            }
        )
    ),
    good("no-gateway-api", "a ReferenceGrant opens nothing")(
        add(
            {
                "apiVersion": "gateway.networking.k8s.io/v1beta1",
                "kind": "ReferenceGrant",
                "metadata": fx.meta("x"),
            }
        )
    ),
    bad("no-host-namespaces", "hostNetwork", DEPLOY)(set_pod(hostNetwork=True)),
    bad("no-host-namespaces", "hostPID", DEPLOY)(set_pod(hostPID=True)),
    bad("no-host-namespaces", "hostIPC", DEPLOY)(set_pod(hostIPC=True)),
    good("no-host-namespaces", "explicit false")(set_pod(hostNetwork=False, hostPID=False)),
    bad("no-host-ports", "hostPort", DEPLOY)(
        set_container(ports=[{"containerPort": 8080, "hostPort": 8080}])
    ),
    good("no-host-ports", "containerPort only")(set_container(ports=[{"containerPort": 8080}])),
    bad("no-service-for-outbound-workloads", "Service for the tunnel", f"Service/{NS}/tunnel")(
        add(service("tunnel", {"selector": fx.TUNNEL, "ports": [{"port": 8443}]}))
    ),
    bad(
        "no-service-for-outbound-workloads",
        "a selector that matches the sandbox pods by instance only",
        f"Service/{NS}/runner",
    )(
        add(
            service(
                "runner",
                {"selector": {"app.kubernetes.io/instance": "sandbox-runner"}, "ports": []},
            )
        )
    ),
    good("no-service-for-outbound-workloads", "a Service without selector")(
        add(service("manual", {"ports": [{"port": 80}]}))
    ),
    bad("namespace-default-deny", "no default deny", f"Namespace/-/{NS}")(
        remove("NetworkPolicy", "default-deny")
    ),
    bad("namespace-default-deny", "ingress-only default deny", f"Namespace/-/{NS}")(
        lambda m: fx.find(m, "NetworkPolicy", "default-deny")["spec"].update(
            policyTypes=["Ingress"]
        )
    ),
    bad(
        "namespace-default-deny", "a workload in a namespace with no policies", "Namespace/-/other"
    )(
        lambda m: m.append(
            fx.clone(tickets(m), "stray") | {"metadata": {"name": "stray", "namespace": "other"}}
        )
    ),
    good("namespace-default-deny", "separate ingress and egress deny policies")(
        lambda m: (
            fx.find(m, "NetworkPolicy", "default-deny")["spec"].update(policyTypes=["Ingress"]),
            m.append(
                fx.network_policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
            ),
        )
    ),
    bad("ingress-from-scoped-sources", "ipBlock source", TICKETS_NP)(
        ingress_from({"ipBlock": {"cidr": "0.0.0.0/0"}})
    ),
    bad("ingress-from-scoped-sources", "every namespace", TICKETS_NP)(
        ingress_from({"namespaceSelector": {}})
    ),
    bad("ingress-from-scoped-sources", "every namespace, AND-ed with a podSelector", TICKETS_NP)(
        ingress_from({"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}})
    ),
    bad("ingress-from-scoped-sources", "a rule with no from", TICKETS_NP)(ingress_from()),
    good("ingress-from-scoped-sources", "one named namespace")(
        ingress_from({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}})
    ),
    good("outbound-only-ingress", "the named scraper on the named metrics ports")(
        tunnel_ingress(
            SCRAPER, ports=[{"port": "metrics"}, {"protocol": "TCP", "port": "proxy-metrics"}]
        )
    ),
    bad("outbound-only-ingress", "the scraper on a numeric port", TUNNEL_NP)(
        tunnel_ingress(SCRAPER, ports=[{"port": 2000, "protocol": "TCP"}])
    ),
    bad("outbound-only-ingress", "the scraper on every port", TUNNEL_NP)(tunnel_ingress(SCRAPER)),
    bad("outbound-only-ingress", "the proxy's TLS port", TUNNEL_NP)(
        tunnel_ingress(SCRAPER, ports=[{"port": "metrics"}, {"port": "https"}])
    ),
    bad("outbound-only-ingress", "every pod of the scraper's namespace", TUNNEL_NP)(
        tunnel_ingress(
            {"namespaceSelector": SCRAPER["namespaceSelector"]}, ports=[{"port": "metrics"}]
        )
    ),
    bad(
        "outbound-only-ingress",
        "pods of any namespace with the scraper's labels",
        TUNNEL_NP,
        also=("ingress-from-scoped-sources",),
    )(
        tunnel_ingress(
            {"namespaceSelector": {}, "podSelector": SCRAPER["podSelector"]},
            ports=[{"port": "metrics"}],
        )
    ),
    bad("outbound-only-ingress", "the scraper's pods in this namespace", TUNNEL_NP)(
        tunnel_ingress({"podSelector": SCRAPER["podSelector"]}, ports=[{"port": "metrics"}])
    ),
    bad(
        "outbound-only-ingress",
        "an address block",
        TUNNEL_NP,
        also=("ingress-from-scoped-sources",),
    )(tunnel_ingress({"ipBlock": {"cidr": "10.0.0.0/8"}}, ports=[{"port": "metrics"}])),
    bad("outbound-only-ingress", "the scraper into a sandbox runner", SANDBOX_NP)(
        tunnel_ingress(SCRAPER, ports=[{"port": "metrics"}], policy="sandbox-runner")
    ),
    bad(
        "outbound-only-ingress",
        "a namespace-wide policy with ingress",
        f"NetworkPolicy/{NS}/all-pods",
    )(
        add(
            fx.network_policy(
                "all-pods",
                {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [SCRAPER]}]},
            )
        )
    ),
    bad("sandbox-no-direct-mcp-access", "a pool opted in to an MCP server", SANDBOX_NP)(
        lambda m: (
            declare_direct("mcp-server-tickets")(m),
            egress_to({"podSelector": {"matchLabels": fx.TICKETS}})(m),
        )
    ),
    good("sandbox-no-direct-mcp-access", "a pool reaching only the platform API")(lambda m: None),
    bad(
        "egress-only-to-allowed-cidrs",
        "0.0.0.0/0",
        SANDBOX_NP,
        also=("metadata-endpoint-unreachable",),
    )(egress_to({"ipBlock": {"cidr": "0.0.0.0/0"}})),
    bad(
        "egress-only-to-allowed-cidrs", "::/0", SANDBOX_NP, also=("metadata-endpoint-unreachable",)
    )(egress_to({"ipBlock": {"cidr": "::/0"}})),
    bad(
        "egress-only-to-allowed-cidrs",
        "a rule with ports and no to",
        SANDBOX_NP,
        also=("metadata-endpoint-unreachable",),
    )(egress_to()),
    bad("egress-only-to-allowed-cidrs", "a public address off the list", SANDBOX_NP)(
        egress_to({"ipBlock": {"cidr": "8.8.8.8/32"}})
    ),
    bad(
        "egress-only-to-allowed-cidrs",
        "0.0.0.0/0 except private ranges",
        SANDBOX_NP,
        also=("metadata-endpoint-unreachable",),
    )(egress_to({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}})),
    good("egress-only-to-allowed-cidrs", "a subnet of a platform range")(
        egress_to({"ipBlock": {"cidr": "160.79.104.0/24"}})
    ),
    bad(
        "egress-only-to-allowed-cidrs",
        "a whole private range, nothing declared to judge it by",
        SANDBOX_NP,
        also=("metadata-endpoint-unreachable",),  # fd00::/8 holds AWS's fd00:ec2::254
    )(egress_to({"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "fd00::/8"}})),
    good("egress-only-to-allowed-cidrs", "a database's own narrow private range")(
        egress_to({"ipBlock": {"cidr": "10.20.0.0/24"}})
    ),
    good("egress-only-to-allowed-cidrs", "an ingress-only policy with an open egress list")(
        lambda m: m.append(
            fx.network_policy(
                "ingress-only", {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}
            )
        )
    ),
    bad(
        "metadata-endpoint-unreachable",
        "link-local block",
        SANDBOX_NP,
        also=("egress-only-to-allowed-cidrs",),
    )(egress_to({"ipBlock": {"cidr": "169.254.0.0/16"}})),
    bad(
        "metadata-endpoint-unreachable",
        "a rule with no to",
        SANDBOX_NP,
        also=("egress-only-to-allowed-cidrs",),
    )(egress_to(ports=False)),
    good(
        "metadata-endpoint-unreachable",
        "0.0.0.0/0 except the metadata addresses",
        also=("egress-only-to-allowed-cidrs",),  # the rest of the internet stays open
    )(
        egress_to(
            {
                "ipBlock": {
                    "cidr": "0.0.0.0/0",
                    "except": ["169.254.0.0/16", "168.63.129.16/32", "100.100.100.200/32"],
                }
            }
        )
    ),
    # --- credentials ---
    *[
        bad(
            "secret-single-reader",
            f"a second reader through {how}",
            GET_SECRET,
            also=("tool-own-role-and-secret",),  # the Secret is a tool's own
        )(read_secret("sandbox-runner", "mcp-server-tickets-db-get-ticket", how))
        for how in ("env", "envFrom", "volume", "projected")
    ],
    bad("secret-single-reader", "a shared Secret outside the set", f"Secret/{NS}/ghost")(
        lambda m: (
            read_secret("sandbox-runner", "ghost")(m),
            read_secret("mcp-tunnel", "ghost", "volume")(m),
        )
    ),
    good("secret-single-reader", "two containers of one pod share a Secret")(
        lambda m: fx.find(m, "Deployment", "mcp-tunnel")["spec"]["template"]["spec"]["containers"][
            0
        ].update(envFrom=[{"secretRef": {"name": "mcp-tunnel-token"}}])
    ),
    bad(
        "database-admin-only-provisioner",
        "admin Secret in an MCP server",
        DEPLOY,
        also=("secret-single-reader",),
    )(read_secret("mcp-server-tickets", "database-admin-support")),
    bad(
        "database-admin-only-provisioner",
        "a CronJob labelled role-provisioner is not the Job",
        f"CronJob/{NS}/sneaky",
        also=("secret-single-reader",),
    )(
        lambda m: m.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": fx.meta("sneaky", {"app.kubernetes.io/component": "role-provisioner"}),
                "spec": {
                    "jobTemplate": {
                        "spec": {
                            "template": fx.find(m, "Job", "role-provisioner-support")["spec"][
                                "template"
                            ]
                        }
                    }
                },
            }
        )
    ),
    good("database-admin-only-provisioner", "the provisioning Job reads it")(nothing),
    bad("database-roles-unique", "two Secrets hold one role", f"Secret/{NS}/copy")(
        lambda m: m.append(fx.secret("copy", "database-role", database_role=DUP_ROLE))
    ),
    bad("database-roles-unique", "a role Secret without its role", f"Secret/{NS}/anon")(
        add(fx.secret("anon", "database-role"))
    ),
    bad("database-roles-unique", "role SQL creates a role twice", ROLE_SQL)(
        append_sql(f"CREATE ROLE {DUP_ROLE} LOGIN;\n")
    ),
    good("database-roles-unique", "a ROLE mentioned in a comment")(
        append_sql(f"-- CREATE ROLE {DUP_ROLE}\n")
    ),
    bad("tool-own-role-and-secret", "a tool without its Secret", AGENT)(
        remove("Secret", "mcp-server-tickets-db-export-ticket")
    ),
    bad("tool-own-role-and-secret", "every role Secret gone, the database still configured", AGENT)(
        lambda m: (
            remove("Secret", "mcp-server-tickets-db-export-ticket")(m),
            remove("Secret", "mcp-server-tickets-db-get-ticket")(m),
            fx.pod_spec(tickets(m))["containers"][0].update(
                env=[{"name": "DATABASE_HOST", "value": "10.20.0.15"}]
            ),
        )
    ),
    good("tool-own-role-and-secret", "a server without a database holds no roles")(
        lambda m: (
            remove("Secret", "mcp-server-tickets-db-export-ticket")(m),
            remove("Secret", "mcp-server-tickets-db-get-ticket")(m),
            fx.pod_spec(tickets(m))["containers"][0].update(env=[]),
            remove("ConfigMap", "role-sql-support")(m),
        )
    ),
    bad(
        "tool-own-role-and-secret",
        "a tool role never created",
        AGENT,
        also=("role-sql-least-privilege",),
    )(role_sql(fx.ROLE_SQL.replace("CREATE ROLE mcp_tickets_export_ticket", "SELECT 1"))),
    bad("tool-own-role-and-secret", "a tool Secret read by another workload", GET_SECRET)(
        lambda m: (
            fx.pod_spec(tickets(m))["containers"][0]["env"].pop(0),
            read_secret("sandbox-runner", "mcp-server-tickets-db-get-ticket")(m),
        )
    ),
    *[
        bad(
            "role-sql-least-privilege",
            why,
            ROLE_SQL,
            # ALL on the read tool's role makes it a write tool its agent runs without asking.
            also=("write-tools-always-ask",) if why.startswith(("ALL", "GRANT ALL")) else (),
        )(append_sql(sql))
        for why, sql in [
            ("SUPERUSER", "ALTER ROLE mcp_tickets_get_ticket SUPERUSER;"),
            ("CREATEROLE", "ALTER ROLE mcp_tickets_get_ticket WITH CREATEROLE;"),
            ("CREATEDB", "CREATE ROLE x LOGIN CREATEDB;"),
            ("REPLICATION", "ALTER ROLE mcp_tickets_get_ticket REPLICATION;"),
            ("BYPASSRLS", "alter role mcp_tickets_get_ticket bypassrls;"),
            (
                "ALL PRIVILEGES",
                "GRANT ALL PRIVILEGES ON support.tickets TO mcp_tickets_get_ticket;",
            ),
            ("GRANT ALL", "GRANT ALL ON ALL TABLES IN SCHEMA support TO mcp_tickets_get_ticket;"),
            ("to PUBLIC", "GRANT SELECT ON support.tickets TO PUBLIC;"),
            ("to a list with PUBLIC", "GRANT SELECT ON support.tickets TO x, public;"),
            ("grant option", "GRANT SELECT ON support.tickets TO x WITH GRANT OPTION;"),
            ("attribute in \\gexec SQL", "SELECT 'ALTER ROLE \"x\" SUPERUSER' \\gexec\n"),
            (
                "attribute in dynamic SQL",
                "DO $$ BEGIN EXECUTE format('ALTER ROLE %I CREATEDB', 'x'); END $$;",
            ),
        ]
    ],
    good("role-sql-least-privilege", "NO* attributes, REVOKE from PUBLIC, comments")(
        append_sql(
            "/* never SUPERUSER */ REVOKE ALL ON DATABASE support FROM PUBLIC;\n"
            "GRANT SELECT ON ALL TABLES IN SCHEMA support TO mcp_tickets_get_ticket;\n"
            "GRANT USAGE ON SCHEMA public TO mcp_tickets_get_ticket;\n"
            "SELECT 'CREATE ROLE \"y\" NOLOGIN NOSUPERUSER NOCREATEDB NOBYPASSRLS' \\gexec\n"
            "SELECT CASE WHEN rolsuper THEN 'SUPERUSER' END FROM pg_roles;\n"
            "REVOKE GRANT OPTION FOR SELECT ON support.tickets FROM x;\n"
        )
    ),
    bad("no-privileged-role-binding", "RoleBinding to edit", f"RoleBinding/{NS}/ci")(
        add(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": fx.meta("ci"),
                "roleRef": {
                    "kind": "ClusterRole",
                    "name": "edit",
                    "apiGroup": "rbac.authorization.k8s.io",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}],
            }
        )
    ),
    bad(
        "no-privileged-role-binding",
        "ClusterRoleBinding to cluster-admin",
        "ClusterRoleBinding/-/ops",
    )(
        add(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "ops"},
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            }
        )
    ),
    good("no-privileged-role-binding", "a narrow Role")(
        add(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": fx.meta("reader"),
                "roleRef": {"kind": "Role", "name": "config-reader"},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": fx.meta("config-reader"),
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
            },
        )
    ),
    bad("no-automounted-token", "automount left at its default", DEPLOY)(
        lambda m: fx.pod_spec(tickets(m)).pop("automountServiceAccountToken")
    ),
    bad("no-automounted-token", "a projected token", DEPLOY)(
        lambda m: fx.pod_spec(tickets(m))["volumes"].append(
            {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}
        )
    ),
    # --- hardened pods ---
    bad("run-as-non-root", "runAsNonRoot unset", DEPLOY)(
        lambda m: fx.pod_spec(tickets(m))["securityContext"].pop("runAsNonRoot")
    ),
    bad("run-as-non-root", "runAsUser 0 on a container", DEPLOY)(set_security(runAsUser=0)),
    good("run-as-non-root", "set per container instead of per pod")(
        lambda m: (
            fx.pod_spec(tickets(m))["securityContext"].pop("runAsNonRoot"),
            set_security(runAsNonRoot=True)(m),
        )
    ),
    bad("no-privilege-escalation", "allowPrivilegeEscalation unset", DEPLOY)(
        lambda m: fx.first_container(tickets(m))["securityContext"].pop("allowPrivilegeEscalation")
    ),
    bad("no-privilege-escalation", "an init container escalates", DEPLOY)(
        set_pod(initContainers=[escalating_init_container()])
    ),
    bad("no-privileged-containers", "privileged", DEPLOY)(set_security(privileged=True)),
    good("no-privileged-containers", "privileged: false")(set_security(privileged=False)),
    bad("drop-all-capabilities", "nothing dropped", DEPLOY)(set_security(capabilities={})),
    bad("drop-all-capabilities", "NET_ADMIN added", DEPLOY)(
        set_security(capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]})
    ),
    good("drop-all-capabilities", "NET_BIND_SERVICE added back")(
        set_security(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    ),
    bad("seccomp-runtime-default", "no profile", DEPLOY)(
        lambda m: fx.pod_spec(tickets(m))["securityContext"].pop("seccompProfile")
    ),
    bad("seccomp-runtime-default", "a container opts out", DEPLOY)(
        set_security(seccompProfile={"type": "Unconfined"})
    ),
    good("seccomp-runtime-default", "a Localhost profile")(
        set_security(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})
    ),
    bad("read-only-root-filesystem", "writable root", DEPLOY)(
        set_security(readOnlyRootFilesystem=False)
    ),
    bad("restricted-volume-types", "hostPath", DEPLOY)(
        lambda m: fx.pod_spec(tickets(m))["volumes"].append(
            {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}
        )
    ),
    good("restricted-volume-types", "a PVC")(
        lambda m: fx.pod_spec(tickets(m))["volumes"].append(
            {"name": "data", "persistentVolumeClaim": {"claimName": "x"}}
        )
    ),
    bad("resource-requests-limits", "no limits", DEPLOY)(
        lambda m: fx.first_container(tickets(m))["resources"].pop("limits")
    ),
    bad("liveness-readiness-probes", "no readiness probe", DEPLOY)(
        lambda m: fx.first_container(tickets(m)).pop("readinessProbe")
    ),
    good("liveness-readiness-probes", "a Job needs none")(nothing),
    bad("image-pinned-by-digest", "a tag only", DEPLOY)(
        set_container(image="ghcr.io/example/mcp-tickets:1.4.2")
    ),
    good("image-pinned-by-digest", "tag and digest")(
        set_container(image="ghcr.io/example/mcp-tickets:1.4.2" + fx.DIGEST)
    ),
    # --- cross-layer ---
    bad("agent-definition-consistent", "a toolset names an undeclared server", AGENT)(
        definition(
            fx.agent_definition(
                tools=[
                    *fx.agent_definition()["tools"],
                    {
                        "type": "mcp_toolset",
                        "mcp_server_name": "ghost",
                        "default_config": {"enabled": False},
                        "configs": [],
                    },
                ]
            )
        )
    ),
    bad("agent-definition-consistent", "a declared server without a toolset", AGENT)(
        definition(fx.agent_definition(tools=[]))
    ),
    bad("agent-definition-consistent", "a server declared twice", AGENT)(
        definition(fx.agent_definition(mcp_servers=fx.agent_definition()["mcp_servers"] * 2))
    ),
    bad("agent-definition-consistent", "tools not allowlisted", AGENT)(
        definition(
            fx.agent_definition(
                tools=[fx.agent_definition()["tools"][0] | {"default_config": {"enabled": True}}]
            )
        )
    ),
    bad("agent-definition-consistent", "a credential in the definition", AGENT)(
        definition(
            fx.agent_definition(
                mcp_servers=[fx.agent_definition()["mcp_servers"][0] | {"authorization_token": "x"}]
            )
        )
    ),
    bad("agent-definition-consistent", "not JSON", AGENT, also=("mcp-server-vault-credential",))(
        definition("{not json")
    ),
    bad("mcp-server-vault-credential", "no credential", AGENT)(
        remove("Secret", "mcp-server-tickets-platform-token")
    ),
    bad(
        "mcp-server-vault-credential",
        "a trailing slash is another URL",
        AGENT,
        f"Secret/{NS}/mcp-server-tickets-platform-token",
    )(
        annotate(
            "Secret",
            "mcp-server-tickets-platform-token",
            **{"agent-perimeter.io/mcp-server-url": fx.URL + "/"},
        )
    ),
    bad("mcp-server-vault-credential", "two credentials for one URL", AGENT)(
        add(fx.secret("second-token", "platform-token", mcp_server_url=fx.URL))
    ),
    bad("mcp-server-tunnel-route", "no route for the server", AGENT)(
        tunnel_config(fx.TUNNEL_CONFIG.replace("  tickets:", "  orders:"))
    ),
    bad("mcp-server-tunnel-route", "two routes (subdomain and full host)", AGENT)(
        tunnel_config(fx.TUNNEL_CONFIG + f"  tickets.{fx.DOMAIN}: {ROUTE_OK}\n")
    ),
    bad("mcp-server-tunnel-route", "another tunnel domain", AGENT)(
        tunnel_config(fx.TUNNEL_CONFIG.replace(fx.DOMAIN, "mcp.example.org"))
    ),
    bad("mcp-server-tunnel-route", "an upstream with a path", TUNNEL_CM)(
        tunnel_config(fx.TUNNEL_CONFIG + f"  extra: {ROUTE_OK}/mcp\n")
    ),
    good("mcp-server-tunnel-route", "a full-hostname route")(
        tunnel_config(fx.TUNNEL_CONFIG.replace("  tickets:", f"  tickets.{fx.DOMAIN}:"))
    ),
    # the whole picture (issue 22 §3): where a route goes, what the CA file is
    bad("mcp-server-tunnel-route", "a route to a host outside the perimeter", TUNNEL_CM)(
        tunnel_config(fx.TUNNEL_CONFIG + "  extra: https://collector.example.net:443\n")
    ),
    bad("mcp-server-tunnel-route", "a route to a Service that is not an MCP server's", TUNNEL_CM)(
        lambda m: (
            m.append(service("debug", {"selector": {"app": "debug"}, "ports": [{"port": 80}]})),
            tunnel_config(fx.TUNNEL_CONFIG + f"  extra: https://debug.{NS}.svc:80\n")(m),
        )
    ),
    bad("mcp-server-tunnel-route", "address validation switched off", TUNNEL_CM)(
        tunnel_config(
            fx.TUNNEL_CONFIG.replace("upstream:\n", "upstream:\n  disable_ip_validation: true\n")
        )
    ),
    bad("upstream-tls-required", "the proxy trusts the system CA bundle", TUNNEL_CM)(
        tunnel_config(
            fx.TUNNEL_CONFIG.replace(
                "/etc/mcp-proxy/upstream-ca/ca.crt", "/etc/ssl/certs/ca-certificates.crt"
            )
        )
    ),
    bad("upstream-tls-required", "a CA file from no managed CA mount", TUNNEL_CM)(
        tunnel_config(
            fx.TUNNEL_CONFIG.replace("/etc/mcp-proxy/upstream-ca/ca.crt", "/tmp/ca/ca.crt")
        )
    ),
    bad("upstream-tls-required", "a route over plain http", TUNNEL_CM)(
        tunnel_config(fx.TUNNEL_CONFIG.replace("tickets: https://", "tickets: http://"))
    ),
    bad("upstream-tls-required", "no managed CA file", TUNNEL_CM)(
        tunnel_config(
            fx.TUNNEL_CONFIG.replace("    ca_file: /etc/mcp-proxy/upstream-ca/ca.crt\n", "")
        )
    ),
    bad("upstream-tls-required", "public CAs trusted too", TUNNEL_CM)(
        tunnel_config(
            fx.TUNNEL_CONFIG.replace("include_system_cas: false", "include_system_cas: true")
        )
    ),
    bad(
        "backend-credential-own-server",
        "read by a sandbox runner",
        f"Secret/{NS}/{BACKEND_SECRET}",
        also=("secret-single-reader",),
    )(read_secret("sandbox-runner", BACKEND_SECRET, "volume")),
    bad("backend-credential-own-server", "read into the environment", DEPLOY)(
        read_secret("mcp-server-tickets", BACKEND_SECRET, "env")
    ),
    bad("backend-credential-own-server", "no reader annotated", f"Secret/{NS}/{BACKEND_SECRET}")(
        lambda m: fx.find(m, "Secret", BACKEND_SECRET)["metadata"]["annotations"].pop(
            "agent-perimeter.io/reader"
        )
    ),
    bad("write-tools-always-ask", "a tool its server declares write, allowed", AGENT)(
        declare_access({"get_ticket": "write", "export_ticket": "write"})
    ),
    good("write-tools-always-ask", "tools their server declares as they are")(
        declare_access({"get_ticket": "read", "export_ticket": "write"})
    ),
    bad("write-tools-always-ask", "a write tool that never asks", AGENT)(
        definition(
            json.loads(json.dumps(fx.agent_definition()).replace('"always_ask"', '"always_allow"'))
        )
    ),
]


def _ids(case: Case) -> str:
    return str(case)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_rule_case(case: Case) -> None:
    manifests = fx.environment()
    case.mutate(manifests)
    assert_only_its_rule_fires(case, manifests)


def assert_only_its_rule_fires(case: Case, manifests: list[fx.Manifest]) -> None:
    """Every rule runs: the case's rule fires on exactly its refs (none for a passing case),
    and no rule fires but those the case declares its fault also breaks."""
    found = evaluate(fx.resources(manifests), tier="prod")
    fired = {v.rule_id for v in found}
    assert fired == ({case.rule} if case.refs else set()) | case.also, [v.message for v in found]
    own = [v for v in found if v.rule_id == case.rule]
    assert {v.resource for v in own} == set(case.refs), [v.message for v in own]


def test_every_rule_has_a_violating_case() -> None:
    from tests.policies.test_policy_classes import CASES as CLASS_CASES

    assert {c.rule for c in [*CASES, *CLASS_CASES] if c.refs} == {r.id for r in ALL_RULES}


@pytest.mark.parametrize("tier", ["dev", "staging", "prod"])
@pytest.mark.parametrize("rule", [r.id for r in ALL_RULES])
def test_clean_environment_passes(rule: str, tier: str) -> None:
    """Every rule's baseline passing case: the clean environment, at every tier."""
    assert evaluate(fx.resources(fx.environment()), tier=tier, only=[rule]) == []


def test_a_problem_written_twice_is_reported_once() -> None:
    """Issue 22 §6: the same peer twice in a rule is one problem: one finding per rule, in
    check, CrossGuard (both run a rule through the same runner) and the audit alike."""
    manifests = fx.environment()
    egress_to({"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "0.0.0.0/0"}})(manifests)
    found = evaluate(fx.resources(manifests), tier="prod")
    per_rule = [v.rule_id for v in found]
    assert sorted(per_rule) == ["egress-only-to-allowed-cidrs", "metadata-endpoint-unreachable"]
