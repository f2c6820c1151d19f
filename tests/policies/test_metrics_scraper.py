"""`metrics:` lets the named Prometheus scraper reach the tunnel's metrics ports, and no more."""

from __future__ import annotations

import pytest

from infra.offline.manifests import Manifest
from infra.offline.mocked import render_environment
from infra.pure.config import ConfigError, Metrics, PerimeterConfig, load
from policies.rules import Resource, evaluate

pytestmark = pytest.mark.helm

SCRAPER = {"scraper_namespace": "monitoring", "scraper_pod_labels": {"app": "prometheus"}}


def with_metrics(**fields: object) -> PerimeterConfig:
    config = load(stack="dev")
    return config.model_copy(update={"metrics": Metrics.model_validate({**SCRAPER, **fields})})


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    return next(m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name)


def test_off_by_default_the_tunnel_admits_nothing() -> None:
    config = load(stack="dev")
    assert config.metrics is None
    policy = find(render_environment(config), "NetworkPolicy", "mcp-tunnel")
    assert policy["spec"]["ingress"] == []


def test_the_scraper_reaches_the_named_metrics_ports_only_and_the_pack_accepts_it() -> None:
    manifests = render_environment(with_metrics(proxy_port=9090))
    policy = find(manifests, "NetworkPolicy", "mcp-tunnel")
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    },
                    "podSelector": {"matchLabels": {"app": "prometheus"}},
                }
            ],
            "ports": [
                {"protocol": "TCP", "port": "metrics"},
                {"protocol": "TCP", "port": "proxy-metrics"},
            ],
        }
    ]
    pods = find(manifests, "Deployment", "mcp-tunnel")["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for c in pods["containers"] for p in c["ports"]}
    assert ports["metrics"] == 2000 and ports["proxy-metrics"] == 9090
    found = evaluate([Resource.from_manifest(m) for m in manifests], tier="dev")
    assert not [v for v in found if v.mandatory], [v.message for v in found if v.mandatory]
    # the very same rule refuses the scraper one port wider
    policy["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": "https"})
    wider = evaluate([Resource.from_manifest(m) for m in manifests], only=["outbound-only-ingress"])
    assert [v.resource for v in wider] == [
        f"NetworkPolicy/{policy['metadata']['namespace']}/mcp-tunnel"
    ]


def test_without_a_proxy_port_only_cloudflared_is_scraped() -> None:
    manifests = render_environment(with_metrics())
    ingress = find(manifests, "NetworkPolicy", "mcp-tunnel")["spec"]["ingress"]
    assert ingress[0]["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    pods = find(manifests, "Deployment", "mcp-tunnel")["spec"]["template"]["spec"]
    assert "proxy-metrics" not in {p["name"] for c in pods["containers"] for p in c["ports"]}


def test_a_scraper_without_labels_is_refused_naming_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace(
        "    sandboxes:\n",
        "    metrics: {scraper_namespace: monitoring, scraper_pod_labels: {}}\n    sandboxes:\n",
        1,
    )
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(text)
    with pytest.raises(ConfigError, match=r"metrics\.scraper_pod_labels"):
        load(config_file=str(stack))


@pytest.mark.parametrize(
    "labels",
    [
        {"app.kubernetes.io/name": "sandbox-runner"},
        {"app.kubernetes.io/instance": "sandbox-runner-support"},
        {
            "app.kubernetes.io/name": "mcp-server",
            "app.kubernetes.io/instance": "mcp-server-exports",
        },
    ],
)
def test_a_scraper_in_the_perimeter_namespace_that_is_a_workload_is_refused(
    labels: dict[str, str],
) -> None:
    from tests.conftest import assert_refused

    def inside(raw: dict) -> None:  # type: ignore[type-arg]
        raw["metrics"] = {"scraper_namespace": raw["namespace"], "scraper_pod_labels": labels}

    assert_refused(inside, "metrics.scraper_pod_labels", "a scraper must be outside")


def _scraped_from_own_namespace(labels: dict[str, str]) -> list[str]:
    """The pack's verdict on dev with a scraper in the perimeter's namespace: built legitimately
    with unique labels, then (as a hand-edit would) pointed at `labels`."""
    config = load(stack="dev")
    metrics = Metrics.model_validate(
        {"scraper_namespace": config.namespace, "scraper_pod_labels": {"app": "prometheus"}}
    )
    manifests = render_environment(config.model_copy(update={"metrics": metrics}))
    peer = find(manifests, "NetworkPolicy", "mcp-tunnel")["spec"]["ingress"][0]["from"][0]
    peer["podSelector"]["matchLabels"] = labels
    found = evaluate([Resource.from_manifest(m) for m in manifests], only=["outbound-only-ingress"])
    return [v.message for v in found]


def test_the_pack_refuses_a_workload_of_the_namespace_as_the_scraper() -> None:
    (message,) = _scraped_from_own_namespace({"app.kubernetes.io/name": "sandbox-runner"})
    assert "as the scraper: a scraper is no workload of the namespace" in message


def test_a_scraper_pod_in_the_namespace_that_no_workload_is_passes() -> None:
    assert _scraped_from_own_namespace({"app": "prometheus"}) == []
