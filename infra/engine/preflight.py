"""Cluster prerequisites checked before anything is registered, so a missing one fails the
preview in seconds with its field named, not `pulumi up` after a 10-minute rollout timeout."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from infra.pure.config import ConfigError, PerimeterConfig


class PrerequisiteMissing(Exception):
    """Something the stack names does not exist in the cluster."""


def required_runtime_classes(config: PerimeterConfig) -> list[tuple[str, str]]:
    """(field path, RuntimeClass name) for every pool that names one."""
    return [
        (f"sandboxes[{i}].runtime_class_name", pool.runtime_class_name)
        for i, pool in enumerate(config.sandboxes)
        if pool.runtime_class_name
    ]


def missing_runtime_classes(wanted: Iterable[tuple[str, str]], existing: set[str]) -> list[str]:
    return [
        f"{path}: RuntimeClass {name!r} does not exist in the cluster, so every sandbox pod "
        f"of that pool would be refused (`kubectl get runtimeclass`; existing: "
        f"{', '.join(sorted(existing)) or 'none'}). Install the runtime and its RuntimeClass "
        "first (see README, Prerequisites), or remove runtime_class_name from the stack file."
        for path, name in wanted
        if name not in existing
    ]


def api_client(kubernetes_config: Any) -> Any:
    """The cluster the kubernetes provider deploys to: `kubernetes:kubeconfig` (a path or the
    file's content) and `kubernetes:context` from the stack, else KUBECONFIG or ~/.kube/config."""
    import yaml
    from kubernetes import config

    kubeconfig = kubernetes_config.get("kubeconfig")
    context = kubernetes_config.get("context")
    if kubeconfig and not os.path.exists(os.path.expanduser(kubeconfig)):
        return config.new_client_from_config_dict(yaml.safe_load(kubeconfig), context=context)
    path = os.path.expanduser(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG")
    return config.new_client_from_config(config_file=path, context=context)


def check_cluster(config: PerimeterConfig, kubernetes_config: Any) -> list[str]:
    """Problems with the cluster's prerequisites; empty when there is nothing to check."""
    wanted = required_runtime_classes(config)
    if not wanted:
        return []
    from kubernetes import client

    api = client.NodeV1Api(api_client(kubernetes_config))
    existing = {str(item.metadata.name) for item in api.list_runtime_class().items if item.metadata}
    return missing_runtime_classes(wanted, existing)


def require_cluster_prerequisites(config: PerimeterConfig) -> None:
    """Under the engine (preview and up): stop with every missing prerequisite named.

    An unreachable cluster is left to the kubernetes provider, which reports it itself.
    """
    import pulumi

    try:
        problems = check_cluster(config, pulumi.Config("kubernetes"))
    except Exception as exc:  # any failure to read is the provider's to report
        pulumi.log.warn(f"could not check the cluster's prerequisites: {type(exc).__name__}")
        return
    if problems:
        source = f"Pulumi.{pulumi.get_stack()}.yaml"
        raise pulumi.RunError(str(ConfigError(source, [("", p) for p in problems])))
