"""No shared and no admin credential: one reader per Secret, one role per tool."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from . import names, sql
from .inventory import Inventory, agent_toolsets
from .k8s import WORKLOAD_KINDS, pod_labels, pod_spec
from .model import Resource, Settings, Target, as_list, as_map, resource_rule, stack_rule

PRIVILEGED_CLUSTER_ROLES = frozenset({"cluster-admin", "admin", "edit"})


def _refs(resources: list[Resource]) -> str:
    return ", ".join(r.ref for r in resources)


@stack_rule(
    "secret-single-reader",
    "Every Secret is read by at most one workload (env, envFrom, volumes and projected volumes).",
    "Give each workload its own Secret (and its own credential behind it); never mount one "
    "Secret into two Deployments/Jobs.",
)
def secret_single_reader(inventory: Inventory, settings: Settings) -> Iterator[tuple[Target, str]]:
    for (namespace, name), readers in sorted(
        inventory.secret_readers.items(), key=lambda item: (str(item[0][0]), item[0][1])
    ):
        if len(readers) > 1:
            secret = inventory.secrets.get((namespace, name))
            target: Target = secret or f"Secret/{namespace or '-'}/{name}"
            yield target, f"read by {len(readers)} workloads: {_refs(readers)}"


def _is_provisioner(workload: Resource) -> bool:
    component = workload.labels.get(names.LABEL_COMPONENT) or pod_labels(workload).get(
        names.LABEL_COMPONENT
    )
    return workload.kind == "Job" and component == names.COMPONENT_PROVISIONER


@stack_rule(
    "database-admin-only-provisioner",
    "The database admin Secret is read only by the role-provisioning Job.",
    "Remove the admin Secret from this workload; give it a per-tool role Secret instead. Only the "
    "Job labelled app.kubernetes.io/component: role-provisioner may hold the admin credential.",
)
def database_admin_only_provisioner(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for secret in inventory.secrets_labelled(names.CREDENTIAL_DATABASE_ADMIN):
        for reader in inventory.readers_of(secret):
            if not _is_provisioner(reader):
                yield reader, f"reads the database admin Secret {secret.ref}"


def _role_secrets(inventory: Inventory) -> dict[str, list[Resource]]:
    found: dict[str, list[Resource]] = defaultdict(list)
    for secret in inventory.secrets_labelled(names.CREDENTIAL_DATABASE_ROLE):
        role = secret.annotations.get(names.ANNOTATION_DATABASE_ROLE)
        if role:
            found[str(role)].append(secret)
    return found


@stack_rule(
    "database-roles-unique",
    "Database role names are unique: created once, held by exactly one role Secret.",
    "Derive each role from its server and tool name (mcp_<server>_<tool>) and create one Secret "
    "per role, annotated agent-perimeter.io/database-role.",
)
def database_roles_unique(inventory: Inventory, settings: Settings) -> Iterator[tuple[Target, str]]:
    for secret in inventory.secrets_labelled(names.CREDENTIAL_DATABASE_ROLE):
        if not secret.annotations.get(names.ANNOTATION_DATABASE_ROLE):
            problem = f"no {names.ANNOTATION_DATABASE_ROLE} annotation: which role does it hold?"
            yield secret, problem
    for role, secrets in sorted(_role_secrets(inventory).items()):
        for secret in secrets[1:]:
            yield secret, f"role {role} is also held by {secrets[0].ref}"
    created: dict[str, Resource] = {}
    for config_map, text in inventory.role_sql:
        for role in sql.created_roles(text):
            if role in created:
                yield config_map, f"creates role {role} again (also created by {created[role].ref})"
            created.setdefault(role, config_map)


@stack_rule(
    "tool-own-role-and-secret",
    "Every MCP tool has its own database role and its own Secret, read only by its server.",
    "Create one role and one Secret per tool (named after the server and tool), created by the "
    "role SQL and mounted only into that server's Deployment.",
)
def tool_own_role_and_secret(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    role_secrets = _role_secrets(inventory)
    created = {role for _, text in inventory.role_sql for role in sql.created_roles(text)}
    for document in inventory.agent_definitions:
        for toolset in agent_toolsets(document):
            server = str(toolset.get("mcp_server_name"))
            for config in as_list(toolset.get("configs")):
                tool = str(as_map(config).get("name"))
                role = names.role_name(server, tool)
                where = f"tool {tool} of MCP server {server}"
                secrets = role_secrets.get(role, [])
                if not secrets:
                    yield document.resource, f"{where} has no database-role Secret for role {role}"
                if inventory.role_sql and role not in created:
                    yield document.resource, f"{where}: no role SQL creates role {role}"
                own = set(map(id, inventory.server_workloads(server)))
                for secret in secrets:
                    for reader in inventory.readers_of(secret):
                        if id(reader) not in own:
                            yield secret, f"role Secret of {where} is read by {reader.ref}"


@resource_rule(
    "role-sql-least-privilege",
    "The role SQL grants no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS, ALL PRIVILEGES, "
    "grant options, and nothing to PUBLIC.",
    "Create tool roles with NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS and grant "
    "each only the listed privileges on its own tables.",
    kinds={"ConfigMap"},
)
def role_sql_least_privilege(resource: Resource, settings: Settings) -> Iterator[str]:
    if str(resource.labels.get(names.LABEL_ROLE_SQL)).lower() != "true":
        return
    text = as_map(resource.props.get("data")).get(names.ROLE_SQL_KEY)
    if not isinstance(text, str):
        yield f"has no data key {names.ROLE_SQL_KEY!r}"
        return
    for attribute in sql.forbidden_attributes(text):
        yield f"grants the role attribute {attribute}"
    for statement in sql.grants_all(text):
        yield f"grants ALL PRIVILEGES: {statement[:120]}"
    for grant in sql.grants(text):
        if "public" in grant.grantees:
            yield f"grants to PUBLIC: {grant.statement[:120]}"
        if grant.with_option:
            yield f"lets the grantee pass the grant on: {grant.statement[:120]}"


@resource_rule(
    "no-privileged-role-binding",
    "No RoleBinding or ClusterRoleBinding to cluster-admin, admin or edit.",
    "Bind a Role listing only the verbs and resources the subject needs (our workloads need none).",
    kinds={"RoleBinding", "ClusterRoleBinding"},
)
def no_privileged_role_binding(resource: Resource, settings: Settings) -> Iterator[str]:
    role = as_map(resource.props.get("roleRef")).get("name")
    if role in PRIVILEGED_CLUSTER_ROLES:
        yield f"binds the built-in role {role}"


@resource_rule(
    "no-automounted-token",
    "Pods do not mount a service account token.",
    "Set automountServiceAccountToken: false in the pod spec and drop projected "
    "serviceAccountToken sources; no workload here talks to the Kubernetes API.",
    kinds=WORKLOAD_KINDS,
)
def no_automounted_token(resource: Resource, settings: Settings) -> Iterator[str]:
    spec = pod_spec(resource)
    if spec.get("automountServiceAccountToken") is not False:
        yield "automountServiceAccountToken is not false, so the pod gets an API token"
    for volume in as_list(spec.get("volumes")):
        volume = as_map(volume)
        for source in as_list(as_map(volume.get("projected")).get("sources")):
            if as_map(source).get("serviceAccountToken") is not None:
                yield f'volume "{volume.get("name")}" projects a service account token'


RULES = (
    secret_single_reader,
    database_admin_only_provisioner,
    database_roles_unique,
    tool_own_role_and_secret,
    role_sql_least_privilege,
    no_privileged_role_binding,
    no_automounted_token,
)
