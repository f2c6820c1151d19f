"""No shared and no admin credential: one reader per Secret, one role per tool."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from . import sql
from .contract import names, secret_shapes
from .inventory import Inventory, agent_toolsets, is_provisioner, role_sql_texts
from .k8s import containers, pod_labels, pod_views, where
from .model import Resource, Settings, Target, as_list, as_map, resource_rule, stack_rule


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


@stack_rule(
    "database-admin-only-provisioner",
    "The database admin Secret is read only by the role-provisioning Job.",
    "Remove the admin Secret from this workload; give it a per-tool role Secret instead. Only the "
    "Job labelled app.kubernetes.io/component: role-provisioner may hold the admin credential.",
)
def database_admin_only_provisioner(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for secret in inventory.secrets_granting(names.CREDENTIAL_DATABASE_ADMIN):
        for reader in inventory.readers_of(secret):
            if not is_provisioner(reader):
                yield reader, f"reads the database admin Secret {secret.ref}"


def _role_secrets(inventory: Inventory) -> dict[str, list[Resource]]:
    found: dict[str, list[Resource]] = defaultdict(list)
    for secret in inventory.secrets_granting(names.CREDENTIAL_DATABASE_ROLE):
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
    for secret in inventory.secrets_granting(names.CREDENTIAL_DATABASE_ROLE):
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


def _database_backed(inventory: Inventory, server: str) -> bool:
    """Whether a server talks to a database: it holds a role Secret (by annotation or by
    reading one) or its pods are given a database to connect to. A server with no database
    (an HTTP API's, say) has tools without roles."""
    release = names.mcp_release(server)
    role_secrets = inventory.secrets_granting(names.CREDENTIAL_DATABASE_ROLE)
    if any(s.annotations.get(names.ANNOTATION_READER) == release for s in role_secrets):
        return True
    readers = {id(r) for s in role_secrets for r in inventory.readers_of(s)}
    for workload in inventory.server_workloads(server):
        if id(workload) in readers:
            return True
        for pod in pod_views(workload):
            for _, container in containers(pod.spec):
                env = as_list(container.get("env"))
                if any(as_map(e).get("name") == "DATABASE_HOST" for e in env):
                    return True
    return False


@stack_rule(
    "tool-own-role-and-secret",
    "Every MCP tool of a database-backed server has its own database role and its own Secret, "
    "read only by its server.",
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
            if not _database_backed(inventory, server):
                continue
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
    "Role SQL, wherever it is found, grants no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, "
    "BYPASSRLS, ALL PRIVILEGES, grant options, nothing to PUBLIC, no membership in a pg_* or "
    "the admin role, and runs no dynamic SQL.",
    "Create tool roles with NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, grant "
    "each only the listed privileges on its own tables, grant no role memberships, and write "
    "statements out instead of building them at run time (EXECUTE, format, \\gexec).",
)
def role_sql_least_privilege(resource: Resource, settings: Settings) -> Iterator[str]:
    if str(resource.labels.get(names.LABEL_ROLE_SQL)).lower() == "true" and not isinstance(
        as_map(resource.props.get("data")).get(names.ROLE_SQL_KEY), str
    ):
        yield f"has no data key {names.ROLE_SQL_KEY!r}"
    for place, text in role_sql_texts(resource):
        for problem in sql.problems(text):
            yield f"{place}: {problem}"


def _token_mounted(inventory: Inventory, workload: Resource, spec: Mapping[str, Any]) -> bool:
    """Whether the pod gets an API token: its own field, else its ServiceAccount's, else yes."""
    own = spec.get("automountServiceAccountToken")
    if own is not None:
        return own is not False
    account = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    found = inventory.service_accounts.get((workload.effective_namespace, account))
    return found is None or found.props.get("automountServiceAccountToken") is not False


@stack_rule(
    "no-automounted-token",
    "Pods do not mount a service account token (the pod field, or its ServiceAccount's, is off).",
    "Set automountServiceAccountToken: false on the pod spec or its ServiceAccount, and drop "
    "projected serviceAccountToken sources; no workload here talks to the Kubernetes API.",
)
def no_automounted_token(inventory: Inventory, settings: Settings) -> Iterator[tuple[Target, str]]:
    for workload in inventory.workloads:
        for pod in pod_views(workload):
            at = where(workload, pod)
            if _token_mounted(inventory, workload, pod.spec):
                yield (
                    workload,
                    f"{at}the pod gets an API token (automountServiceAccountToken is not false)",
                )
            for volume in as_list(pod.spec.get("volumes")):
                volume = as_map(volume)
                for source in as_list(as_map(volume.get("projected")).get("sources")):
                    if as_map(source).get("serviceAccountToken") is not None:
                        yield (
                            workload,
                            f'{at}volume "{volume.get("name")}" projects a service account token',
                        )


@stack_rule(
    "no-service-account-token-secret",
    "No workload reads a kubernetes.io/service-account-token Secret (a long-lived API token).",
    "Remove the Secret from the pod; nothing in the perimeter needs a Kubernetes API token.",
)
def no_service_account_token_secret(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for secret in inventory.kind("Secret"):
        if secret.props.get("type") != "kubernetes.io/service-account-token":
            continue
        for reader in inventory.readers_of(secret):
            yield reader, f"reads {secret.ref}, a service account token"


def _env_secret_refs(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(container description, Secret name) for every Secret a container reads into env."""
    for description, container in containers(spec):
        for env in as_list(container.get("env")):
            ref = as_map(as_map(as_map(env).get("valueFrom")).get("secretKeyRef"))
            if ref.get("name"):
                yield description, str(ref["name"])
        for source in as_list(container.get("envFrom")):
            ref = as_map(as_map(source).get("secretRef"))
            if ref.get("name"):
                yield description, str(ref["name"])


@stack_rule(
    "backend-credential-own-server",
    "A backend credential is read by exactly the MCP server it is issued to (its "
    "agent-perimeter.io/reader), and only as a mounted file, never as an environment variable.",
    "Mount the backend's Secret as a read-only volume into its own MCP server only; give each "
    "server that needs the backend its own credential (and its own Secret).",
)
def backend_credential_own_server(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for secret in inventory.secrets_granting(names.CREDENTIAL_BACKEND):
        owner = str(secret.annotations.get(names.ANNOTATION_READER) or "")
        if not owner:
            yield secret, f"a backend credential without the {names.ANNOTATION_READER} annotation"
        for reader in inventory.readers_of(secret):
            instance = str(pod_labels(reader).get(names.LABEL_INSTANCE) or "")
            component = str(pod_labels(reader).get(names.LABEL_NAME) or "")
            if component != names.COMPONENT_MCP_SERVER or (owner and instance != owner):
                yield (
                    secret,
                    f"backend credential of {owner or 'no declared server'} is read by {reader.ref}",
                )
            for pod in pod_views(reader):
                for description, name in _env_secret_refs(pod.spec):
                    if name == secret.object_name:
                        yield (
                            reader,
                            (
                                f"{where(reader, pod)}{description} reads the backend credential "
                                f"{secret.ref} into its environment; mount it as a file"
                            ),
                        )


@resource_rule(
    "no-plaintext-credential",
    "No credential in plain text: not in a container's env values, command or args, nor in a "
    "ConfigMap (judged by credential names as words and by well-known token shapes).",
    "Put the credential in its own Secret and mount it as a file into the one workload that "
    "uses it; pass the file's path instead of the value.",
)
def no_plaintext_credential(resource: Resource, settings: Settings) -> Iterator[str]:
    """The value is never repeated: only where it is and what it looks like."""
    if resource.kind == "ConfigMap":
        for key, value in sorted(as_map(resource.props.get("data")).items()):
            text = str(value)
            found = secret_shapes.credential_in_text(text) or secret_shapes.credential_in_env(
                str(key), text
            )
            if found:
                yield f"data.{key} holds {found}"
        return
    for pod in pod_views(resource):
        at = where(resource, pod)
        for description, container in containers(pod.spec):
            for env in as_list(container.get("env")):
                env = as_map(env)
                if "value" in env:
                    found = secret_shapes.credential_in_env(
                        str(env.get("name", "")), str(env["value"])
                    )
                    if found:
                        yield f"{at}{description}: env {env.get('name')} holds {found}"
            for field_name in ("command", "args"):
                words = [str(a) for a in as_list(container.get(field_name))]
                hit = secret_shapes.credential_in_args(words)
                if hit:
                    yield f"{at}{description}: {field_name}[{hit[0]}] holds {hit[1]}"


RULES = (
    secret_single_reader,
    no_plaintext_credential,
    backend_credential_own_server,
    database_admin_only_provisioner,
    database_roles_unique,
    tool_own_role_and_secret,
    role_sql_least_privilege,
    no_automounted_token,
    no_service_account_token_secret,
)
