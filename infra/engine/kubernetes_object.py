"""A Kubernetes object the program creates itself (not through a chart), as a plain manifest.

The engine sees what `pulumi_kubernetes.core.v1.Secret(...)` and its siblings register: the
provider's type token for the object's apiVersion and kind, the object as its properties,
the pulumi-kubernetes package's version (so the same provider plugin serves it), and a
Secret's `data` and `stringData` as secrets, in the state too. The typed classes are not
imported because each loads the whole generated API of its group: `core/v1` alone took
0.3 s, a fifth of an offline render of 20 MCP servers. A manifest is also what the charts,
the policy rules and the audit all read, so the objects are written once, in that shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_kubernetes import _utilities as provider_package

# Properties the provider itself stores as secrets (its Secret class's additional outputs).
SECRET_PROPERTIES = {"Secret": ("data", "stringData")}


def type_token(api_version: str, kind: str) -> str:
    """`kubernetes:<group>/<version>:<kind>`, the core group spelled `core`."""
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


def object_meta(
    name: pulumi.Input[str],
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
) -> dict[str, Any]:
    """`metadata`, leaving out what is not set (the typed classes drop None fields too)."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


class KubernetesObject(pulumi.CustomResource):
    """One object, registered with the pulumi-kubernetes provider.

    `manifest` holds `apiVersion`, `kind`, `metadata` and the kind's own fields, in the
    API's field names; values may be Outputs.
    """

    metadata: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        resource_name: str,
        manifest: Mapping[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError(f"{resource_name}: a manifest needs a string apiVersion and kind")
        props = {key: value for key, value in manifest.items() if value is not None}
        secret = SECRET_PROPERTIES.get(kind, ()) if api_version == "v1" else ()
        for key in secret:
            if key in props:
                props[key] = pulumi.Output.secret(props[key])
        opts = pulumi.ResourceOptions.merge(provider_package.get_resource_opts_defaults(), opts)
        if secret:
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=list(secret))
            )
        super().__init__(type_token(api_version, kind), resource_name, props, opts)
