"""Restoring the network boundary when someone edits it with kubectl.

The engine diffs the program's inputs against its own state, not against the cluster:
an egress rule added by hand to a NetworkPolicy the program manages survives
`pulumi refresh` and `pulumi up` as "unchanged". So, under the engine, the program
reads its NetworkPolicies back and, for each one that differs from what it declares,
stamps a new value on one annotation. The changed input makes the provider re-apply
the whole spec (forced over the hand edit's field ownership), which puts the declared
rules back. With no drift the annotation keeps its live value, so nothing changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from infra.offline.audit.live import objects_of, policy_view
from infra.offline.manifests import Manifest
from infra.pure.naming import ANNOTATION_BOUNDARY_RESTORED as RESTORED


def drifted(declared: Sequence[Manifest], live: Sequence[Manifest]) -> list[str]:
    """Names of declared NetworkPolicies whose live rules differ from the declared ones."""
    by_name = {str((m.get("metadata") or {}).get("name")): m for m in live}
    return [
        str(m["metadata"]["name"])
        for m in declared
        if str(m["metadata"]["name"]) in by_name
        and policy_view(m) != policy_view(by_name[str(m["metadata"]["name"])])
    ]


def restore_tokens(declared: Sequence[Manifest], live: Sequence[Manifest]) -> dict[str, str]:
    """NetworkPolicy name -> the RESTORED annotation value the program should declare."""
    by_name = {str((m.get("metadata") or {}).get("name")): m for m in live}
    changed = set(drifted(declared, live))
    tokens = {}
    for manifest in declared:
        name = str(manifest["metadata"]["name"])
        current = by_name.get(name)
        if current is None:
            continue
        meta = current.get("metadata") or {}
        if name in changed:
            tokens[name] = f"drift undone at resourceVersion {meta.get('resourceVersion', '?')}"
        elif (meta.get("annotations") or {}).get(RESTORED):
            tokens[name] = str(meta["annotations"][RESTORED])
    return tokens


def read_live_policies(namespace: str, kubernetes_config: Any) -> list[Manifest]:
    from kubernetes import client

    from infra.engine.preflight import api_client

    api = client.NetworkingV1Api(api_client(kubernetes_config))
    response: Any = api.list_namespaced_network_policy(namespace, _preload_content=False)
    return objects_of("NetworkPolicy", json.loads(response.data))


def live_restore_tokens(declared: Sequence[Manifest], namespace: str) -> Mapping[str, str]:
    """Under the engine: read the live policies; a cluster not reachable yet restores nothing."""
    import pulumi

    try:
        live = read_live_policies(namespace, pulumi.Config("kubernetes"))
    except Exception as exc:  # a first `up`, or no cluster yet: the provider reports it
        pulumi.log.debug(f"boundary read skipped: {type(exc).__name__}")
        return {}
    for name in drifted(declared, live):
        pulumi.log.warn(
            f"NetworkPolicy {namespace}/{name} was changed outside the program: restoring it"
        )
    return restore_tokens(declared, live)
