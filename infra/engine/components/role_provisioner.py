"""The in-cluster Job that applies one database's per-tool role SQL with the admin credential."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.contract.names import admin_secret_name
from infra.engine.credentials import credential_secret
from infra.engine.kubernetes_object import KubernetesObject, object_meta
from infra.pure.config import DatabaseEndpoint, Provisioner
from infra.pure.database.job import (
    ADMIN_PASSWORD_KEY,
    ADMIN_SECRET_DIR,
    CA_FILE_KEY,
    CA_MOUNT_PATH,
    ROLE_SQL_KEY,
    SQL_MOUNT_PATH,
    VERIFIERS_DIR,
    connection_env,
    job_command,
)
from infra.pure.database.sql import RoleSpec
from infra.pure.naming import (
    COMPONENT_PROVISIONER,
    CREDENTIAL_DATABASE_ADMIN,
    CREDENTIAL_ROLE_VERIFIERS,
    LABEL_COMPONENT,
    LABEL_ROLE_SQL,
    Placement,
    common_labels,
    database_ca_config_map,
    provisioner_name,
    provisioner_selector,
    provisioning_digest,
    verifiers_secret_name,
)
from infra.pure.workloads import restricted_container_security, restricted_pod_security


@dataclass(frozen=True)
class RoleProvisionerArgs:
    placement: Placement
    database: str
    endpoint: DatabaseEndpoint
    provisioner: Provisioner
    # Raised by one to rotate every tool's password: part of the Job's name.
    rotation_epoch: int
    # The database's role SQL and its roles (infra/pure/database/sql.py), derived from the servers.
    sql: str
    roles: list[RoleSpec]
    admin_password: pulumi.Output[str]
    verifiers: Mapping[str, pulumi.Output[str]]


class RoleProvisioner(pulumi.ComponentResource):
    """Runs inside the cluster so the database never has to be reachable from `pulumi up`.

    The Job's name carries a hash of the SQL and the rotation epoch: a change to
    either makes a new Job, which `pulumi up` waits for, so a failed grant fails
    the deployment with the database's own error in the Job's log. It is the
    only workload that reads the admin Secret.
    """

    job_name: pulumi.Output[str]
    sql: str

    def __init__(
        self, name: str, args: RoleProvisionerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:RoleProvisioner", name, None, opts)
        place, database, endpoint = args.placement, args.database, args.endpoint
        child = pulumi.ResourceOptions(parent=self)
        base = provisioner_name(database)
        labels = common_labels(COMPONENT_PROVISIONER, base, place.environment)
        self.sql = args.sql
        digest = provisioning_digest(args.rotation_epoch, self.sql)
        verifiers_name = verifiers_secret_name(database, digest)

        admin = credential_secret(
            f"{name}-admin",
            placement=place,
            name=admin_secret_name(database),
            credential=CREDENTIAL_DATABASE_ADMIN,
            reader=base,
            data={"username": endpoint.admin_user, "password": args.admin_password},
            opts=child,
        )
        verifiers = credential_secret(
            f"{name}-verifiers",
            placement=place,
            name=verifiers_name,
            credential=CREDENTIAL_ROLE_VERIFIERS,
            reader=base,
            data={spec.env_var: args.verifiers[spec.role] for spec in args.roles},
            opts=child,
        )
        sql_map = KubernetesObject(
            f"{name}-sql",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": object_meta(
                    f"{base}-sql-{digest}", place.namespace, {**labels, LABEL_ROLE_SQL: "true"}
                ),
                "immutable": True,
                "data": {ROLE_SQL_KEY: self.sql},
            },
            opts=child,
        )
        dependencies: list[pulumi.Resource] = [admin, verifiers, sql_map]
        if endpoint.ca_certificate is not None:
            # Not secret: the CA the Job and this database's MCP servers verify the server with.
            dependencies.append(
                KubernetesObject(
                    f"{name}-ca",
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": object_meta(
                            database_ca_config_map(database), place.namespace, labels
                        ),
                        "data": {CA_FILE_KEY: endpoint.ca_certificate},
                    },
                    opts=child,
                )
            )
        account = KubernetesObject(
            f"{name}-serviceaccount",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": object_meta(base, place.namespace, labels),
                "automountServiceAccountToken": False,
            },
            opts=child,
        )
        pod_labels = {
            **labels,
            **provisioner_selector(database),
            LABEL_COMPONENT: COMPONENT_PROVISIONER,
        }
        env = [{"name": k, "value": v} for k, v in connection_env(endpoint, database).items()]
        # Secrets as files (0440, group = fsGroup); job_command reads them for psql.
        mounts: list[dict[str, Any]] = [
            {"name": "role-sql", "mountPath": SQL_MOUNT_PATH, "readOnly": True},
            {"name": "admin", "mountPath": ADMIN_SECRET_DIR, "readOnly": True},
            {"name": "verifiers", "mountPath": VERIFIERS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        volumes: list[dict[str, Any]] = [
            {"name": "role-sql", "configMap": {"name": f"{base}-sql-{digest}"}},
            {
                "name": "admin",
                "secret": {
                    "secretName": admin_secret_name(database),
                    "defaultMode": 0o440,
                    "items": [{"key": ADMIN_PASSWORD_KEY, "path": ADMIN_PASSWORD_KEY}],
                },
            },
            {
                "name": "verifiers",
                "secret": {"secretName": verifiers_name, "defaultMode": 0o440},
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        ]
        if endpoint.ca_certificate is not None:
            mounts.append({"name": "database-ca", "mountPath": CA_MOUNT_PATH, "readOnly": True})
            volumes.append(
                {
                    "name": "database-ca",
                    "configMap": {"name": database_ca_config_map(database), "defaultMode": 0o444},
                }
            )
        resources = args.provisioner.resources
        job = KubernetesObject(
            f"{name}-job",
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": object_meta(f"{base}-{digest}", place.namespace, labels),
                "spec": {
                    "backoffLimit": args.provisioner.backoff_limit,
                    "activeDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": pod_labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": base,
                            "automountServiceAccountToken": False,
                            "enableServiceLinks": False,
                            "securityContext": restricted_pod_security(),
                            "containers": [
                                {
                                    "name": "psql",
                                    "image": str(args.provisioner.image),
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": job_command(),
                                    # psql's last error lines become the pod's termination message,
                                    # which the Job await reports when `pulumi up` fails.
                                    "terminationMessagePolicy": "FallbackToLogsOnError",
                                    "env": env,
                                    "resources": resources.chart_values(),
                                    "securityContext": restricted_container_security(),
                                    "volumeMounts": mounts,
                                }
                            ],
                            "volumes": volumes,
                        },
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*dependencies, account]),
        )
        self.job_name: pulumi.Output[str] = job.metadata["name"]
        self.register_outputs({"job_name": self.job_name})
