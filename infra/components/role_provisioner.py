"""The in-cluster Job that applies one database's per-tool role SQL with the admin credential."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.config import PerimeterConfig
from infra.credentials import credential_secret
from infra.database.job import SQL_FILE_KEY, SQL_MOUNT_PATH, connection_env, psql_command
from infra.database.sql import role_sql, roles_for
from infra.naming import (
    COMPONENT_PROVISIONER,
    CREDENTIAL_DATABASE_ADMIN,
    CREDENTIAL_ROLE_VERIFIERS,
    LABEL_COMPONENT,
    LABEL_ROLE_SQL,
    common_labels,
    provisioner_name,
    provisioner_selector,
)
from infra.workloads import restricted_container_security, restricted_pod_security


@dataclass(frozen=True)
class RoleProvisionerArgs:
    config: PerimeterConfig
    database: str
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
        config, database = args.config, args.database
        endpoint = config.databases[database]
        child = pulumi.ResourceOptions(parent=self)
        base = provisioner_name(database)
        labels = common_labels(COMPONENT_PROVISIONER, base, config.environment)
        self.sql = role_sql(config, database)
        digest = hashlib.sha256(f"{config.rotation_epoch}\n{self.sql}".encode()).hexdigest()[:10]

        admin = credential_secret(
            f"{name}-admin",
            config=config,
            name=f"{base}-admin",
            credential=CREDENTIAL_DATABASE_ADMIN,
            reader=base,
            data={"username": endpoint.admin_user, "password": args.admin_password},
            opts=child,
        )
        verifiers = credential_secret(
            f"{name}-verifiers",
            config=config,
            # Named like the Job that reads it: a rotation creates both before deleting either.
            name=f"{base}-verifiers-{digest}",
            credential=CREDENTIAL_ROLE_VERIFIERS,
            reader=base,
            data={spec.env_var: args.verifiers[spec.role] for spec in roles_for(config, database)},
            opts=child,
        )
        sql_map = k8s.core.v1.ConfigMap(
            f"{name}-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{base}-sql-{digest}",
                namespace=config.namespace,
                labels={**labels, LABEL_ROLE_SQL: "true"},
            ),
            immutable=True,
            data={SQL_FILE_KEY: self.sql},
            opts=child,
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=base, namespace=config.namespace, labels=labels
            ),
            automount_service_account_token=False,
            opts=child,
        )
        pod_labels = {
            **labels,
            **provisioner_selector(database),
            LABEL_COMPONENT: COMPONENT_PROVISIONER,
        }
        env: list[dict[str, Any]] = [
            {"name": k, "value": v} for k, v in connection_env(endpoint, database).items()
        ]
        env.append(
            {
                "name": "PGPASSWORD",
                "valueFrom": {"secretKeyRef": {"name": f"{base}-admin", "key": "password"}},
            }
        )
        resources = config.provisioner.resources
        job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{base}-{digest}", namespace=config.namespace, labels=labels
            ),
            # Manifest-shaped (camelCase) like every other object we build; passed through as is.
            spec=cast(
                Any,
                {
                    "backoffLimit": config.provisioner.backoff_limit,
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
                                    "image": str(config.provisioner.image),
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": psql_command(),
                                    # psql's last error lines become the pod's termination message,
                                    # which the Job await reports when `pulumi up` fails.
                                    "terminationMessagePolicy": "FallbackToLogsOnError",
                                    "env": env,
                                    "envFrom": [
                                        {"secretRef": {"name": f"{base}-verifiers-{digest}"}}
                                    ],
                                    "resources": resources.chart_values(),
                                    "securityContext": restricted_container_security(),
                                    "volumeMounts": [
                                        {
                                            "name": "role-sql",
                                            "mountPath": SQL_MOUNT_PATH,
                                            "readOnly": True,
                                        },
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "role-sql", "configMap": {"name": f"{base}-sql-{digest}"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                            ],
                        },
                    },
                },
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[admin, verifiers, sql_map, account]
            ),
        )
        self.job_name = job.metadata.name
        self.register_outputs({"job_name": self.job_name})
