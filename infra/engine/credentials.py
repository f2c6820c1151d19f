"""Every credential the program creates is a Secret built here.

Policies and the audit recognise a credential by its `agent-perimeter.io/credential`
label and check its reader against the `agent-perimeter.io/reader` annotation, so
no Secret may be created without both.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from infra.engine.kubernetes_object import KubernetesObject, object_meta
from infra.pure.naming import ANNOTATION_READER, LABEL_CREDENTIAL, Placement, common_labels


def credential_secret(
    resource_name: str,
    *,
    placement: Placement,
    name: pulumi.Input[str],
    credential: str,
    reader: str,
    data: Mapping[str, pulumi.Input[str]] | pulumi.Output[dict[str, str]],
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
    secret_type: str = "Opaque",
    component: str = "credential",
    labels: Mapping[str, str] | None = None,
    opts: pulumi.ResourceOptions,
) -> KubernetesObject:
    """A Secret naming what it grants (`credential`) and the one workload that reads it."""
    return KubernetesObject(
        resource_name,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": object_meta(
                name,
                placement.namespace,
                labels={
                    **common_labels(component, reader, placement.environment),
                    **(labels or {}),
                    LABEL_CREDENTIAL: credential,
                },
                annotations={**(annotations or {}), ANNOTATION_READER: reader},
            ),
            "type": secret_type,
            "stringData": data if isinstance(data, pulumi.Output) else dict(data),
        },
        opts=opts,
    )
