"""KubernetesObject registers what pulumi-kubernetes' typed classes register.

The program writes its own objects as manifests instead of through the typed classes (their
imports cost a fifth of a render). The engine must not see a difference: same type token,
same properties (secret ones still secret), same provider version, same secret outputs.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.engine.kubernetes_object import KubernetesObject, object_meta, type_token
from infra.offline.mocked import RecordingMocks
from infra.pure.config import PROJECT

META: Any = object_meta("demo", "agent-perimeter-dev", {"app.kubernetes.io/name": "demo"})
NETWORK_SPEC: Any = {
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "demo"}},
    "policyTypes": ["Ingress", "Egress"],
    "egress": [{"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"port": 5432}]}],
}
JOB_SPEC: Any = {
    "backoffLimit": 1,
    "template": {"spec": {"restartPolicy": "Never", "containers": []}},
}


def _typed(kind: str, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    if kind == "Secret":
        return k8s.core.v1.Secret(
            "typed",
            metadata=META,
            type="Opaque",
            string_data={"password": pulumi.Output.secret("hunter2")},
            opts=opts,
        )
    if kind == "ConfigMap":
        return k8s.core.v1.ConfigMap(
            "typed", metadata=META, immutable=True, data={"a.sql": "SELECT 1"}, opts=opts
        )
    if kind == "NetworkPolicy":
        return k8s.networking.v1.NetworkPolicy("typed", metadata=META, spec=NETWORK_SPEC, opts=opts)
    return k8s.batch.v1.Job("typed", metadata=META, spec=JOB_SPEC, opts=opts)


MANIFESTS: dict[str, dict[str, Any]] = {
    "Secret": {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": META,
        "type": "Opaque",
        "stringData": {"password": pulumi.Output.secret("hunter2")},
    },
    "ConfigMap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": META,
        "immutable": True,
        "data": {"a.sql": "SELECT 1"},
    },
    "NetworkPolicy": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": META,
        "spec": NETWORK_SPEC,
    },
    "Job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": META, "spec": JOB_SPEC},
}


def _register(make: Any) -> tuple[RecordingMocks, list[pulumi.ResourceOptions], Any]:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False)
    seen: list[pulumi.ResourceOptions] = []

    def capture(args: pulumi.ResourceTransformationArgs) -> None:
        seen.append(args.opts)

    made: list[pulumi.CustomResource] = []

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        made.append(make(pulumi.ResourceOptions(transformations=[capture])))
        return made[0].urn

    run()
    return mocks, seen, made[0]


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_registers_as_the_typed_class_does(kind: str) -> None:
    typed, typed_opts, typed_resource = _register(lambda opts: _typed(kind, opts))
    generic, generic_opts, generic_resource = _register(
        lambda opts: KubernetesObject("typed", MANIFESTS[kind], opts=opts)
    )
    ((expected,), (got,)) = typed.resources, generic.resources
    assert got.type == expected.type == type_token(MANIFESTS[kind]["apiVersion"], kind)
    assert got.raw_inputs == expected.raw_inputs  # secret wrappers included
    assert generic_resource._version == typed_resource._version is not None
    assert generic_resource._plugin_download_url == typed_resource._plugin_download_url
    assert sorted(generic_opts[0].additional_secret_outputs or []) == sorted(
        typed_opts[0].additional_secret_outputs or []
    )


def test_a_secret_value_never_reaches_the_engine_in_clear() -> None:
    mocks, opts, _ = _register(
        lambda o: KubernetesObject(
            "s",
            {**MANIFESTS["Secret"], "stringData": {"password": "not-wrapped-by-the-caller"}},
            opts=o,
        )
    )
    (secret,) = mocks.resources
    assert "not-wrapped-by-the-caller" not in str(
        {k: v for k, v in secret.raw_inputs.items() if k != "stringData"}
    )
    assert "4dabf18193072939515e22adb298388d" in str(secret.raw_inputs["stringData"])
    assert set(opts[0].additional_secret_outputs or []) == {"data", "stringData"}


@pytest.mark.parametrize("manifest", [{"kind": "Secret"}, {"apiVersion": "v1"}, {}])
def test_a_manifest_without_api_version_or_kind_is_refused(manifest: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="apiVersion and kind"):
        KubernetesObject("broken", manifest)


def test_type_tokens_spell_the_core_group() -> None:
    assert type_token("v1", "Secret") == "kubernetes:core/v1:Secret"
    assert (
        type_token("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy")
        == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
    )
