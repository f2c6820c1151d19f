"""Table-driven cases per class of issue 10: each spoils (or legitimately varies) the clean
environment in one way; a violating case reports exactly its rule on exactly its resource,
a legitimate one reports nothing."""

from __future__ import annotations

from typing import Any

import pytest

from infra.contract.names import NAMESPACE_NAME_LABEL
from policies.rules import RULES_BY_ID
from policies.rules.admission import admission_manifests
from tests.policies import perimeter_fixtures as fx
from tests.policies.test_policy_rules import (
    DEPLOY,
    SANDBOX_NP,
    Case,
    Mutation,
    add,
    append_sql,
    assert_only_its_rule_fires,
    bad,
    declare_direct,
    egress_to,
    good,
    ingress_from,
    read_secret,
    service,
    set_container,
    set_pod,
    set_security,
    tickets,
)

NS = fx.NS
RBAC = "rbac.authorization.k8s.io/v1"


def obj(api: str, kind: str, name: str, namespaced: bool = True, **body: Any) -> fx.Manifest:
    metadata = fx.meta(name) if namespaced else {"name": name}
    metadata.update(body.pop("metadata", {}))
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **body}


# Metadata addresses inside the private ranges egress-only-to-allowed-cidrs lets pass.
PRIVATE_METADATA_FORMS = {"fd00:ec2::/64", "fd20:ce::254/128", "100.100.100.200/32"}


def custom_workload(name: str, pod: dict[str, Any]) -> fx.Manifest:
    """A custom resource embedding a pod template two levels down (as operators' CRs do)."""
    return obj(
        "example.dev/v1",
        "TrainingJob",
        name,
        spec={"replicaSpecs": {"worker": {"replicas": 2, "template": pod}}},
    )


def hardened_pod(**spec: Any) -> dict[str, Any]:
    """A pod template every rule admits, reading no Secret (so it shares none)."""
    containers = spec.pop("containers", [fx.container("c", "ghcr.io/example/custom")])
    return fx.pod({"app": "custom"}, containers, **spec)


def privileged_container() -> dict[str, Any]:
    """Hardened in every other way, so only the privileged flag is wrong."""
    container = fx.container("c", "ghcr.io/example/custom")
    container["securityContext"]["privileged"] = True
    return container


def root_pod_spec() -> dict[str, Any]:
    """Hardened in every other way, but nothing says the containers run as non-root."""
    spec = hardened_pod()["spec"]
    spec["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    return spec


def mutate_pod(change: Any) -> Mutation:
    return lambda m: change(fx.pod_spec(tickets(m)))


def binding(name: str, role_kind: str, role: str, *subjects: dict[str, str]) -> fx.Manifest:
    subjects_ = list(subjects) or [{"kind": "ServiceAccount", "name": "default", "namespace": NS}]
    return obj(
        RBAC,
        "RoleBinding",
        name,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        subjects=subjects_,
    )


def role(kind: str, name: str, rules: list[dict[str, Any]], **extra: Any) -> fx.Manifest:
    return obj(RBAC, kind, name, namespaced=kind == "Role", rules=rules, **extra)


def sql_config_map(name: str, key: str, text: str, labelled: bool = False) -> fx.Manifest:
    labels = {"agent-perimeter.io/role-sql": "true"} if labelled else {}
    return obj("v1", "ConfigMap", name, metadata={"labels": labels}, data={key: text})


def namespace_labels(**labels: str) -> Mutation:
    def mutate(m: list[fx.Manifest]) -> None:
        fx.find(m, "Namespace", NS)["metadata"]["labels"].update(labels)

    return mutate


def pv(name: str, storage_class: str, **source: Any) -> fx.Manifest:
    spec = {"storageClassName": storage_class, **source}
    return obj("v1", "PersistentVolume", name, namespaced=False, spec=spec)


def claim(**spec: Any) -> fx.Manifest:
    return obj("v1", "PersistentVolumeClaim", "data", spec=spec)


def mount_claim(*objects: fx.Manifest) -> Mutation:
    """Add the volumes and the claim `data`, and mount the claim into the tickets server."""

    def mutate(m: list[fx.Manifest]) -> None:
        m.extend(objects)
        volume = {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}
        fx.pod_spec(tickets(m))["volumes"].append(volume)

    return mutate


BINDING = f"RoleBinding/{NS}/b"
SQL_CM = f"ConfigMap/{NS}/role-sql-support"
NS_REF = f"Namespace/-/{NS}"


def unlabelled(secret: fx.Manifest) -> fx.Manifest:
    secret["metadata"]["labels"].pop("agent-perimeter.io/credential")
    return secret


def unlabel(m: list[fx.Manifest], name: str) -> None:
    unlabelled(fx.find(m, "Secret", name))


SELECTS_NOTHING = {"matchLabels": {"agent-perimeter.io/no-such-label": "x"}}


def guarded(
    policy: Any = None, binding: Any = None, rule: str = "no-ingress", rename: bool = False
) -> Mutation:
    """The bundle's namespace with every guard, one rule's policy or binding spec edited."""

    def mutate(m: list[fx.Manifest]) -> None:
        bundle_namespace(m)
        manifests = guards()
        name = next(
            g["metadata"]["name"]
            for g in manifests
            if g["kind"] == "ValidatingAdmissionPolicy" and g["metadata"]["name"].endswith(rule)
        )
        for g in manifests:
            if g["kind"] == "ValidatingAdmissionPolicy" and g["metadata"]["name"] == name:
                if policy is not None:
                    policy(g["spec"])
                if rename:
                    g["metadata"]["name"] = "renamed"
                    g["metadata"]["labels"] = {}
            elif g["spec"].get("policyName") == name:
                if binding is not None:
                    binding(g["spec"])
                if rename:
                    g["spec"]["policyName"] = "renamed"
        m.extend(manifests)

    return mutate


CASES: list[Case] = [
    # --- what counts as a workload ---
    bad(
        "no-host-namespaces",
        "a custom resource embedding a pod template",
        f"TrainingJob/{NS}/train",
    )(add(custom_workload("train", hardened_pod(hostNetwork=True)))),
    bad(
        "no-privileged-containers",
        "a bare pod spec embedded in a custom resource",
        f"Sandbox/{NS}/sb",
    )(
        add(
            obj(
                "example.dev/v1",
                "Sandbox",
                "sb",
                spec={"podSpec": hardened_pod(containers=[privileged_container()])["spec"]},
            )
        )
    ),
    bad("run-as-non-root", "a pod inside a PodList inside a List", f"Pod/{NS}/loose")(
        add(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "v1",
                        "kind": "PodList",
                        "items": [obj("v1", "Pod", "loose", spec=root_pod_spec())],
                    }
                ],
            }
        )
    ),
    good("no-host-namespaces", "a hardened custom workload")(
        add(custom_workload("train", hardened_pod()))
    ),
    good("restricted-volume-types", "a CRD whose schema mentions containers")(
        add(
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "trainingjobs.example.dev",
                namespaced=False,
                spec={
                    "versions": [
                        {
                            "schema": {
                                "openAPIV3Schema": {
                                    "properties": {
                                        "containers": {"type": "array"},
                                        "hostPath": {"type": "object"},
                                    }
                                }
                            }
                        }
                    ]
                },
            )
        )
    ),
    # --- Pod Security restricted, complete ---
    bad("proc-mount-default", "procMount Unmasked", DEPLOY)(set_security(procMount="Unmasked")),
    good("proc-mount-default", "procMount Default")(set_security(procMount="Default")),
    bad("apparmor-profile-allowed", "AppArmor Unconfined field", DEPLOY)(
        set_security(appArmorProfile={"type": "Unconfined"})
    ),
    bad("apparmor-profile-allowed", "AppArmor unconfined annotation", DEPLOY)(
        lambda m: (
            tickets(m)["spec"]["template"]["metadata"]
            .setdefault("annotations", {})
            .update({"container.apparmor.security.beta.kubernetes.io/mcp-server": "unconfined"})
        )
    ),
    good("apparmor-profile-allowed", "AppArmor Localhost profile")(
        set_security(appArmorProfile={"type": "Localhost", "localhostProfile": "k8s-x"})
    ),
    bad("selinux-options-restricted", "SELinux spc_t", DEPLOY)(
        set_security(seLinuxOptions={"type": "spc_t"})
    ),
    bad("selinux-options-restricted", "SELinux user on the pod", DEPLOY)(
        mutate_pod(lambda s: s["securityContext"].update(seLinuxOptions={"user": "system_u"}))
    ),
    good("selinux-options-restricted", "SELinux container_t with a level")(
        set_security(seLinuxOptions={"type": "container_t", "level": "s0:c1,c2"})
    ),
    bad("safe-sysctls", "kernel.msgmax", DEPLOY)(
        mutate_pod(
            lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}])
        )
    ),
    good("safe-sysctls", "net.ipv4.ip_unprivileged_port_start")(
        mutate_pod(
            lambda s: s["securityContext"].update(
                sysctls=[{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
            )
        )
    ),
    bad("no-host-probes", "a probe aimed at another host", DEPLOY)(
        set_container(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80, "path": "/"}})
    ),
    bad("no-privileged-containers", "a Windows HostProcess pod", DEPLOY)(
        mutate_pod(lambda s: s["securityContext"].update(windowsOptions={"hostProcess": True}))
    ),
    bad("seccomp-runtime-default", "pod Unconfined, containers RuntimeDefault", DEPLOY)(
        lambda m: (
            fx.pod_spec(tickets(m))["securityContext"].update(
                seccompProfile={"type": "Unconfined"}
            ),
            set_security(seccompProfile={"type": "RuntimeDefault"})(m),
        )
    ),
    good("run-as-non-root", "UID 0 inside a user namespace")(
        lambda m: (set_pod(hostUsers=False)(m), set_security(runAsUser=0)(m))
    ),
    bad("restricted-volume-types", "an nfs volume", DEPLOY)(
        mutate_pod(
            lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}})
        )
    ),
    bad("no-host-path-persistent-volumes", "a claim bound to a hostPath PV", DEPLOY)(
        mount_claim(
            pv("node-disk", "manual", hostPath={"path": "/"}),
            claim(volumeName="node-disk", storageClassName="manual"),
        )
    ),
    bad("no-host-path-persistent-volumes", "a claim free to bind a local PV by class", DEPLOY)(
        mount_claim(
            pv("local-disk", "fast", local={"path": "/mnt"}), claim(storageClassName="fast")
        )
    ),
    good("no-host-path-persistent-volumes", "a claim bound to a CSI volume")(
        mount_claim(
            pv("local-disk", "local", local={"path": "/mnt"}),
            pv("ebs", "gp3", csi={"driver": "ebs.csi.aws.com", "volumeHandle": "v"}),
            claim(volumeName="ebs", storageClassName="gp3"),
        )
    ),
    good("resource-requests-limits", "limits only (requests default to them)")(
        lambda m: fx.first_container(tickets(m))["resources"].pop("requests")
    ),
    # --- RBAC by effective permission ---
    bad("no-privileged-role-binding", "a Role with a wildcard", BINDING)(
        add(
            binding("b", "Role", "r"),
            role("Role", "r", [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]),
        )
    ),
    bad("no-privileged-role-binding", "a ClusterRole reading Secrets", BINDING)(
        add(
            binding("b", "ClusterRole", "c"),
            role(
                "ClusterRole",
                "c",
                [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            ),
        )
    ),
    bad("no-privileged-role-binding", "escalate on roles", BINDING)(
        add(
            binding("b", "Role", "r"),
            role(
                "Role",
                "r",
                [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "resources": ["roles"],
                        "verbs": ["escalate", "bind"],
                    }
                ],
            ),
        )
    ),
    bad("no-privileged-role-binding", "impersonate users", BINDING)(
        add(
            binding("b", "Role", "r"),
            role(
                "Role", "r", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]
            ),
        )
    ),
    bad("no-privileged-role-binding", "secrets through aggregation", BINDING)(
        add(
            binding("b", "ClusterRole", "agg"),
            role(
                "ClusterRole",
                "agg",
                [],
                aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
            ),
            role(
                "ClusterRole",
                "part",
                [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
                metadata={"labels": {"x": "y"}},
            ),
        )
    ),
    bad("no-privileged-role-binding", "the built-in edit", BINDING)(
        add(binding("b", "ClusterRole", "edit"))
    ),
    bad("no-privileged-role-binding", "a binding to system:authenticated", BINDING)(
        add(binding("b", "ClusterRole", "view", {"kind": "Group", "name": "system:authenticated"}))
    ),
    bad("no-privileged-role-binding", "a ClusterRole aggregated into view", "ClusterRole/-/sneaky")(
        add(
            role(
                "ClusterRole",
                "sneaky",
                [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
                metadata={"labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            )
        )
    ),
    bad("no-privileged-role-binding", "a role that is not in the set", BINDING)(
        add(binding("b", "ClusterRole", "mystery"))
    ),
    good("no-privileged-role-binding", "a namespaced Role called admin")(
        add(
            binding("b", "Role", "admin"),
            role(
                "Role",
                "admin",
                [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
            ),
        )
    ),
    good("no-privileged-role-binding", "the built-in view")(
        add(binding("b", "ClusterRole", "view"))
    ),
    # --- role SQL, parsed ---
    bad("role-sql-least-privilege", "membership in pg_read_all_data", SQL_CM)(
        append_sql("GRANT pg_read_all_data TO mcp_tickets_get_ticket;\n")
    ),
    bad("role-sql-least-privilege", "membership in the admin role", SQL_CM)(
        append_sql(
            "GRANT CURRENT_USER TO mcp_tickets_get_ticket;\n".replace("CURRENT_USER", "admin")
        )
    ),
    bad("role-sql-least-privilege", "IN ROLE at creation", SQL_CM)(
        append_sql("CREATE ROLE extra IN ROLE pg_write_all_data;\n")
    ),
    bad("role-sql-least-privilege", "SUPERUSER in mixed case through ALTER USER", SQL_CM)(
        append_sql("ALTER USER mcp_tickets_get_ticket WITH SuperUser;\n")
    ),
    bad("role-sql-least-privilege", "default privileges to PUBLIC", SQL_CM)(
        append_sql("ALTER DEFAULT PRIVILEGES IN SCHEMA support GRANT SELECT ON TABLES TO PUBLIC;\n")
    ),
    bad("role-sql-least-privilege", "membership WITH ADMIN OPTION", SQL_CM)(
        append_sql("GRANT mcp_tickets_get_ticket TO reporting WITH ADMIN OPTION;\n")
    ),
    bad("role-sql-least-privilege", "EXECUTE of computed text", SQL_CM)(
        append_sql(
            "DO $x$ BEGIN EXECUTE 'GRANT ' || 'ALL ON support.tickets TO PUBLIC'; END $x$;\n"
        )
    ),
    bad("role-sql-least-privilege", "EXECUTE format() that grants", SQL_CM)(
        append_sql("DO $x$ BEGIN EXECUTE format('GRANT SELECT ON %I TO %I', 't', 'r'); END $x$;\n")
    ),
    bad("role-sql-least-privilege", "a GRANT hidden in a constant EXECUTE", SQL_CM)(
        append_sql("DO $x$ BEGIN EXECUTE 'ALTER ROLE mcp_tickets_get_ticket SUPERUSER'; END $x$;\n")
    ),
    bad("role-sql-least-privilege", "\\gexec of computed text", SQL_CM)(
        append_sql("SELECT format('GRANT %s ON t TO r', 'ALL') \\gexec\n")
    ),
    bad("role-sql-least-privilege", "\\gexec of a format() that grants table access", SQL_CM)(
        append_sql("SELECT format('GRANT SELECT ON TABLE %s TO %I', 't', 'r') \\gexec\n")
    ),
    bad("role-sql-least-privilege", "\\gexec of a CASE with a computed branch", SQL_CM)(
        append_sql(
            "SELECT CASE WHEN true THEN 'SELECT 1' ELSE 'GRANT ' || 'ALL ON t TO r' END \\gexec\n"
        )
    ),
    bad("role-sql-least-privilege", "unlabelled SQL in another ConfigMap", f"ConfigMap/{NS}/extra")(
        add(
            sql_config_map("extra", "init.sql", "GRANT ALL ON ALL TABLES IN SCHEMA support TO app;")
        )
    ),
    bad("role-sql-least-privilege", "psql -c in a Job's arguments", f"Job/{NS}/one-off")(
        add(
            obj(
                "batch/v1",
                "Job",
                "one-off",
                spec={
                    "template": hardened_pod(
                        restartPolicy="Never",
                        containers=[
                            fx.container(
                                "c",
                                "postgres",
                                command=["sh", "-c", "psql -c 'ALTER ROLE app BYPASSRLS'"],
                            )
                        ],
                    )
                },
            )
        )
    ),
    good("role-sql-least-privilege", "keywords inside comments and strings")(
        append_sql(
            "-- GRANT ALL ON t TO PUBLIC; ALTER ROLE x SUPERUSER\n"
            "/* CREATE ROLE y SUPERUSER; */\n"
            "COMMENT ON ROLE mcp_tickets_get_ticket IS 'GRANT ALL TO PUBLIC; SUPERUSER';\n"
            "SELECT $q$ ALTER ROLE z SUPERUSER $q$ AS text;\n"
        )
    ),
    good("role-sql-least-privilege", "\\gexec granting USAGE on a serial column's sequence")(
        append_sql(
            "SELECT pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO %I', s.seq, s.role) "
            "FROM (SELECT 'support.q_id_seq' AS seq, 'mcp_tickets_export_ticket' AS role) s \\gexec\n"
        )
    ),
    good("role-sql-least-privilege", "\\gexec of a tenant policy typed from the catalog")(
        append_sql(
            "SELECT CASE WHEN a.attname IS NULL THEN 'DO $m$ BEGIN RAISE EXCEPTION ''no column''; "
            "END $m$' ELSE pg_catalog.format('CREATE POLICY p ON support.tickets FOR ALL TO r "
            "USING (tenant_id = CAST(NULL AS %s))', pg_catalog.format_type(a.atttypid, NULL)) END "
            "FROM pg_catalog.pg_attribute a \\gexec\n"
        )
    ),
    good("role-sql-least-privilege", "a reduce-only reconcile loop")(
        append_sql(
            "DO $x$ DECLARE r record; BEGIN FOR r IN SELECT 1 AS a LOOP\n"
            "  EXECUTE pg_catalog.format('REVOKE %s ON %I FROM %I CASCADE', r.a, 't', 'u');\n"
            "END LOOP; END $x$;\n"
        )
    ),
    good("role-sql-least-privilege", "a shell script that says grant in prose")(
        add(
            obj("v1", "ConfigMap", "notes", data={"README": "We grant nothing here; do ask first."})
        )
    ),
    # --- inbound ---
    bad(
        "no-hand-made-pod-endpoints",
        "an EndpointSlice pointing at the tunnel pod",
        f"EndpointSlice/{NS}/side-door",
    )(
        add(
            service("side-door", {"ports": [{"port": 80}]}),
            obj(
                "discovery.k8s.io/v1",
                "EndpointSlice",
                "side-door",
                metadata={"labels": {"kubernetes.io/service-name": "side-door"}},
                addressType="IPv4",
                endpoints=[
                    {
                        "addresses": ["10.1.2.3"],
                        "targetRef": {"kind": "Pod", "name": "mcp-tunnel-abc"},
                    }
                ],
            ),
        )
    ),
    bad("no-hand-made-pod-endpoints", "Endpoints pointing at a pod", f"Endpoints/{NS}/side-door")(
        add(
            obj(
                "v1",
                "Endpoints",
                "side-door",
                subsets=[
                    {
                        "addresses": [
                            {
                                "ip": "10.1.2.3",
                                "targetRef": {"kind": "Pod", "name": "sandbox-runner-x"},
                            }
                        ]
                    }
                ],
            )
        )
    ),
    good("no-hand-made-pod-endpoints", "a selector-less Service for an external database")(
        add(
            service("db", {"ports": [{"port": 5432}]}),
            obj(
                "v1",
                "Endpoints",
                "db",
                subsets=[{"addresses": [{"ip": "10.20.0.5"}], "ports": [{"port": 5432}]}],
            ),
        )
    ),
    *[
        bad("no-ingress", f"a {kind} of {api}", f"{kind}/{NS}/x")(add(obj(api, kind, "x", spec={})))
        for api, kind in (
            ("route.openshift.io/v1", "Route"),
            ("serving.knative.dev/v1", "Service"),
            ("networking.istio.io/v1", "Gateway"),
            ("projectcontour.io/v1", "HTTPProxy"),
            ("traefik.io/v1alpha1", "IngressRouteTCP"),
            ("k8s.nginx.org/v1", "VirtualServer"),
            ("getambassador.io/v3alpha1", "Mapping"),
            ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding"),
        )
    ],
    bad("no-ingress", "an Istio VirtualService bound to a gateway", f"VirtualService/{NS}/x")(
        add(
            obj(
                "networking.istio.io/v1",
                "VirtualService",
                "x",
                spec={"gateways": ["istio-system/public"]},
            )
        )
    ),
    bad("no-gateway-api", "an experimental ListenerSet", f"XListenerSet/{NS}/x")(
        add(obj("gateway.networking.x-k8s.io/v1alpha1", "XListenerSet", "x", spec={}))
    ),
    good("no-ingress", "a cluster-local Knative Service")(
        add(
            obj(
                "serving.knative.dev/v1",
                "Service",
                "x",
                metadata={"labels": {"networking.knative.dev/visibility": "cluster-local"}},
                spec={},
            )
        )
    ),
    good("no-ingress", "an Istio VirtualService inside the mesh")(
        add(obj("networking.istio.io/v1", "VirtualService", "x", spec={"gateways": ["mesh"]}))
    ),
    good("no-gateway-api", "a custom kind called Gateway in another group")(
        add(obj("example.dev/v1", "Gateway", "x", spec={}))
    ),
    *[
        bad(
            "ingress-from-scoped-sources",
            f"namespaceSelector {how}",
            f"NetworkPolicy/{NS}/mcp-server-tickets",
        )(ingress_from({"namespaceSelector": selector}))
        for how, selector in (
            ("matchLabels {}", {"matchLabels": {}}),
            ("matchExpressions []", {"matchExpressions": []}),
            (
                "Exists on kubernetes.io/metadata.name",
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "Exists"}
                    ]
                },
            ),
            (
                "NotIn a few",
                {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": ["kube-system"],
                        }
                    ]
                },
            ),
            ("DoesNotExist", {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}),
        )
    ],
    good("ingress-from-scoped-sources", "namespaceSelector In one namespace, with pods")(
        ingress_from(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NS]}
                    ]
                },
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "mcp-tunnel"}},
            }
        )
    ),
    bad(
        "service-cluster-ip-only",
        "a Service exposed by the Tailscale operator",
        f"Service/{NS}/mcp-server-tickets",
    )(
        lambda m: (
            fx.find(m, "Service", "mcp-server-tickets")["metadata"]
            .setdefault("annotations", {})
            .update({"tailscale.com/expose": "true"})
        )
    ),
    # --- a credential is known by the whole picture, not its label alone (issue 22 §3) ---
    bad(
        "database-admin-only-provisioner",
        "the admin Secret unlabelled, known by its reader",
        DEPLOY,
        also=("secret-single-reader",),
    )(
        lambda m: (
            unlabel(m, "database-admin-support"),
            read_secret("mcp-server-tickets", "database-admin-support")(m),
        )
    ),
    bad("database-admin-only-provisioner", "an unlabelled Secret under the admin's name", DEPLOY)(
        lambda m: (
            m.append(unlabelled(fx.secret("role-provisioner-support-admin", "database-admin"))),
            read_secret("mcp-server-tickets", "role-provisioner-support-admin")(m),
        )
    ),
    bad(
        "backend-credential-own-server",
        "a backend Secret unlabelled, known by its annotation",
        f"Secret/{NS}/mcp-server-tickets-backend-crm-api",
        also=("secret-single-reader",),
    )(
        lambda m: (
            unlabel(m, "mcp-server-tickets-backend-crm-api"),
            read_secret("sandbox-runner", "mcp-server-tickets-backend-crm-api", "volume")(m),
        )
    ),
    # --- in-cluster egress, judged by what the selectors reach (issue 22 §2) ---
    bad("egress-in-cluster-declared", "every pod of every namespace", SANDBOX_NP)(
        egress_to({"namespaceSelector": {}})
    ),
    bad("egress-in-cluster-declared", "labelled pods in every namespace", SANDBOX_NP)(
        egress_to({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "x"}}})
    ),
    bad("egress-in-cluster-declared", "every pod of kube-system", SANDBOX_NP)(
        egress_to({"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}}})
    ),
    bad("egress-in-cluster-declared", "kube-dns on a port that is not DNS", SANDBOX_NP)(
        egress_to(
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        )
    ),
    bad("egress-in-cluster-declared", "pods of another namespace", SANDBOX_NP)(
        egress_to(
            {
                "namespaceSelector": {"matchLabels": {"team": "data"}},
                "podSelector": {"matchLabels": {"app": "warehouse"}},
            }
        )
    ),
    bad("egress-in-cluster-declared", "a pool to an MCP server it never declared", SANDBOX_NP)(
        egress_to({"podSelector": {"matchLabels": fx.TICKETS}})
    ),
    bad("egress-in-cluster-declared", "the same path, by component expression", SANDBOX_NP)(
        egress_to(
            {
                "podSelector": {
                    "matchExpressions": [
                        {
                            "key": "app.kubernetes.io/name",
                            "operator": "In",
                            "values": ["mcp-server"],
                        }
                    ]
                }
            }
        )
    ),
    bad("egress-in-cluster-declared", "every pod of the namespace", SANDBOX_NP)(
        egress_to({"podSelector": {}})
    ),
    bad("egress-in-cluster-declared", "a declared pool to a server it did not list", SANDBOX_NP)(
        lambda m: (
            declare_direct("mcp-server-inventory")(m),
            egress_to({"podSelector": {"matchLabels": fx.TICKETS}})(m),
        )
    ),
    good(
        "egress-in-cluster-declared",
        "a pool to the server its direct_mcp_access lists",
        also=("sandbox-no-direct-mcp-access",),  # declared, and still a reviewer's to see
    )(
        lambda m: (
            declare_direct("mcp-server-tickets")(m),
            egress_to({"podSelector": {"matchLabels": fx.TICKETS}})(m),
        )
    ),
    good("egress-in-cluster-declared", "a selector that reaches no workload")(
        egress_to({"podSelector": {"matchLabels": {"app": "nothing-here"}}})
    ),
    # --- metadata endpoints, every form ---
    *[
        bad(
            "metadata-endpoint-unreachable",
            f"ipBlock {cidr}",
            f"NetworkPolicy/{NS}/sandbox-runner",
            # Link-local and the v4-in-v6 spellings are no private range the egress rule admits.
            also=() if cidr in PRIVATE_METADATA_FORMS else ("egress-only-to-allowed-cidrs",),
        )(egress_to({"ipBlock": {"cidr": cidr}}))
        for cidr in (
            "169.254.0.0/16",
            "fd00:ec2::/64",
            "fd20:ce::254/128",
            "::ffff:169.254.169.254/128",
            "::ffff:0:0/96",
            "64:ff9b::a9fe:a9fe/128",
            "100.100.100.200/32",
        )
    ],
    good("metadata-endpoint-unreachable", "a private range without metadata addresses")(
        egress_to({"ipBlock": {"cidr": "10.20.0.0/16"}}, {"ipBlock": {"cidr": "fd12:3456::/48"}})
    ),
    # --- the namespace's own guards ---
    bad("namespace-pod-security-restricted", "enforce baseline", NS_REF)(
        namespace_labels(**{"pod-security.kubernetes.io/enforce": "baseline"})
    ),
    bad("namespace-pod-security-restricted", "warn privileged", NS_REF)(
        namespace_labels(**{"pod-security.kubernetes.io/warn": "privileged"})
    ),
    good("namespace-pod-security-restricted", "a pinned enforce-version")(
        namespace_labels(**{"pod-security.kubernetes.io/enforce-version": "v1.36"})
    ),
    bad("namespace-resource-quota", "the quota removed", NS_REF)(
        lambda m: m.remove(fx.find(m, "ResourceQuota", "quota"))
    ),
    good("namespace-resource-quota", "a quota under another name")(
        lambda m: fx.find(m, "ResourceQuota", "quota")["metadata"].update(name="limits")
    ),
    bad("no-service-account-token-secret", "a token Secret mounted", DEPLOY)(
        lambda m: (
            m.append(
                obj(
                    "v1",
                    "Secret",
                    "sa-token",
                    type="kubernetes.io/service-account-token",
                    metadata={"annotations": {"kubernetes.io/service-account.name": "default"}},
                )
            ),
            fx.pod_spec(tickets(m))["volumes"].append(
                {"name": "t", "secret": {"secretName": "sa-token"}}
            ),
        )
    ),
    good("no-automounted-token", "ServiceAccount with automount off, pod field unset")(
        lambda m: (
            fx.pod_spec(tickets(m)).pop("automountServiceAccountToken"),
            fx.pod_spec(tickets(m)).update(serviceAccountName="quiet"),
            m.append(obj("v1", "ServiceAccount", "quiet", automountServiceAccountToken=False)),
        )
    ),
    bad("no-automounted-token", "the pod overrides its quiet ServiceAccount", DEPLOY)(
        lambda m: (
            fx.pod_spec(tickets(m)).update(
                serviceAccountName="quiet", automountServiceAccountToken=True
            ),
            m.append(obj("v1", "ServiceAccount", "quiet", automountServiceAccountToken=False)),
        )
    ),
    # --- admission: the bundle's namespace is guarded by the API server too ---
    bad("admission-policies-enforced", "the bundle's namespace without its policies", NS_REF)(
        lambda m: bundle_namespace(m)
    ),
    bad("admission-policies-enforced", "bindings that only audit", NS_REF)(
        lambda m: (bundle_namespace(m), m.extend(guards(actions=["Audit"])))
    ),
    bad("admission-policies-enforced", "bindings on another namespace", NS_REF)(
        lambda m: (bundle_namespace(m), m.extend(guards(namespace="elsewhere")))
    ),
    bad("admission-policies-enforced", "one policy missing", NS_REF)(
        lambda m: (
            bundle_namespace(m),
            m.extend(g for g in guards() if "no-ingress" not in g["metadata"]["name"]),
        )
    ),
    # judged by effect (issue 22 §1): a guard that exists but cannot deny is no guard
    bad("admission-policies-enforced", "a binding whose namespaceSelector matches nothing", NS_REF)(
        guarded(binding=lambda s: s["matchResources"].update(namespaceSelector=SELECTS_NOTHING))
    ),
    bad("admission-policies-enforced", "a binding whose objectSelector matches nothing", NS_REF)(
        guarded(binding=lambda s: s["matchResources"].update(objectSelector=SELECTS_NOTHING))
    ),
    bad("admission-policies-enforced", "a binding on a label the namespace no longer has", NS_REF)(
        guarded(
            binding=lambda s: s["matchResources"].update(
                namespaceSelector={"matchLabels": {"agent-perimeter.io/guarded": "true"}}
            )
        )
    ),
    bad("admission-policies-enforced", "matchConditions that skip the namespace", NS_REF)(
        guarded(
            policy=lambda s: s.update(
                matchConditions=[{"name": "skip", "expression": f"request.namespace != '{fx.NS}'"}]
            )
        )
    ),
    bad("admission-policies-enforced", "operations narrowed to DELETE", NS_REF)(
        guarded(
            policy=lambda s: [
                r.update(operations=["DELETE"]) for r in s["matchConstraints"]["resourceRules"]
            ]
        )
    ),
    bad("admission-policies-enforced", "the kinds excluded again", NS_REF)(
        guarded(
            policy=lambda s: s["matchConstraints"].update(
                excludeResourceRules=s["matchConstraints"]["resourceRules"]
            )
        )
    ),
    bad("admission-policies-enforced", "a validation that is always true", NS_REF)(
        guarded(policy=lambda s: s.update(validations=[{"expression": "true"}]))
    ),
    bad("admission-policies-enforced", "the egress allowance widened to everything", NS_REF)(
        guarded(
            policy=lambda s: [
                v.update(expression=v["expression"].replace('"160.79.104.0/23"', '"0.0.0.0/0"'))
                for v in s["validations"]
            ],
            rule="egress-only-to-allowed-cidrs",
        )
    ),
    bad("admission-policies-enforced", "failurePolicy Ignore", NS_REF)(
        guarded(policy=lambda s: s.update(failurePolicy="Ignore"))
    ),
    good("admission-policies-enforced", "a guard renamed and relabelled, content unchanged")(
        guarded(policy=lambda s: None, rename=True)
    ),
    good("admission-policies-enforced", "the bundle's namespace with every policy bound")(
        lambda m: (bundle_namespace(m), m.extend(guards()))
    ),
    good("admission-policies-enforced", "a namespace the bundle does not own")(lambda m: None),
    # --- credentials in plain text (issue 22 §7): by value, and names judged by words ---
    bad("no-plaintext-credential", "a literal under a credential name", DEPLOY)(
        set_container(env=[{"name": "DB_PASS", "value": "hunter2"}])
    ),
    bad("no-plaintext-credential", "a password inside a URL, under a plain name", DEPLOY)(
        set_container(env=[{"name": "UPSTREAM", "value": "postgres://app:" + "pw1234@db/x"}])
    ),
    bad("no-plaintext-credential", "a token in the args", DEPLOY)(
        set_container(args=["--upstream-auth", "Bearer " + "9f2c8a7d6e5b4c3a2b1c"])
    ),
    bad("no-plaintext-credential", "a credential flag with a literal", DEPLOY)(
        set_container(command=["server", "--db-password=hunter2"])
    ),
    bad("no-plaintext-credential", "a password in a ConfigMap's file", f"ConfigMap/{NS}/app")(
        add(obj("v1", "ConfigMap", "app", data={"app.ini": "[db]\npassword = hunter2\n"}))
    ),
    good("no-plaintext-credential", "a count and a file path under credential-like names")(
        set_container(
            env=[{"name": "MAX_TOKENS", "value": "1024"}, {"name": "TOKEN_FILE", "value": "/x"}]
        )
    ),
    good("no-plaintext-credential", "a credential read from a Secret, not a literal")(
        set_container(
            env=[{"name": "DB_PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
        )
    ),
]


def bundle_namespace(m: list[fx.Manifest]) -> None:
    fx.find(m, "Namespace", NS)["metadata"]["labels"]["app.kubernetes.io/part-of"] = (
        "agent-perimeter"
    )


def guards(actions: list[str] | None = None, namespace: str = NS) -> list[fx.Manifest]:
    manifests = admission_manifests(
        RULES_BY_ID,
        namespace=namespace,
        environment="dev",
        allowed_egress_cidrs=[*fx.API, *fx.EDGE],
        labels={"app.kubernetes.io/part-of": "agent-perimeter"},
    )
    for m in manifests:
        if actions and m["kind"].endswith("Binding"):
            m["spec"]["validationActions"] = actions
    return manifests


@pytest.mark.parametrize("case", CASES, ids=str)
def test_class_case(case: Case) -> None:
    manifests = fx.environment()
    case.mutate(manifests)
    assert_only_its_rule_fires(case, manifests)
