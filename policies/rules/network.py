"""No inbound path into the perimeter, and egress only where the platform lives."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .contract import names
from .contract.addresses import INTERNAL_NETWORKS, reachable_metadata
from .inventory import Inventory
from .k8s import (
    containers,
    labels_match,
    pod_labels,
    pod_views,
    selector_is_empty,
    selector_matches,
    where,
)
from .model import (
    DEFAULT_ALLOWED_EGRESS_CIDRS,
    DEFAULT_MIN_CIDR_PREFIX,
    Network,
    Resource,
    Settings,
    Target,
    as_list,
    as_map,
    resource_rule,
    stack_rule,
)

# Objects of widely used projects that route traffic from outside the cluster to pods:
# API group -> kinds. Matched by group and kind, so an in-mesh object of the same kind
# name elsewhere is not mistaken for one.
INGRESS_KINDS_BY_GROUP: Mapping[str, frozenset[str]] = {
    "networking.k8s.io": frozenset({"Ingress"}),
    "extensions": frozenset({"Ingress"}),
    "route.openshift.io": frozenset({"Route"}),
    "serving.knative.dev": frozenset({"Service", "Route", "DomainMapping"}),
    "networking.internal.knative.dev": frozenset({"Ingress"}),
    "networking.istio.io": frozenset({"Gateway", "VirtualService"}),
    "projectcontour.io": frozenset({"HTTPProxy"}),
    "contour.heptio.com": frozenset({"IngressRoute"}),
    "traefik.io": frozenset({"IngressRoute", "IngressRouteTCP", "IngressRouteUDP"}),
    "traefik.containo.us": frozenset({"IngressRoute", "IngressRouteTCP", "IngressRouteUDP"}),
    "getambassador.io": frozenset({"Mapping", "TCPMapping", "Host", "Listener"}),
    "configuration.konghq.com": frozenset({"TCPIngress", "UDPIngress"}),
    "k8s.nginx.org": frozenset({"VirtualServer", "VirtualServerRoute", "TransportServer"}),
    "apisix.apache.org": frozenset({"ApisixRoute"}),
    "gateway.solo.io": frozenset({"Gateway", "VirtualService", "MatchableHttpGateway"}),
    "zalando.org": frozenset({"RouteGroup"}),
    "voyager.appscode.com": frozenset({"Ingress"}),
    "elbv2.k8s.aws": frozenset({"TargetGroupBinding"}),
    "tailscale.com": frozenset({"Connector", "ProxyGroup"}),
}
GATEWAY_API_GROUPS = frozenset({"gateway.networking.k8s.io", "gateway.networking.x-k8s.io"})
GATEWAY_KINDS = frozenset(
    {
        "Gateway",
        "HTTPRoute",
        "GRPCRoute",
        "TLSRoute",
        "TCPRoute",
        "UDPRoute",
        "ListenerSet",
        "XListenerSet",
        "BackendTLSPolicy",
    }
)
INGRESS_KINDS = frozenset(k for kinds in INGRESS_KINDS_BY_GROUP.values() for k in kinds)
KNATIVE_VISIBILITY_LABELS = ("networking.knative.dev/visibility", "serving.knative.dev/visibility")
# Service annotations that make an operator expose the Service outside the cluster.
EXPOSING_ANNOTATIONS = ("tailscale.com/expose", "tailscale.com/hostname")


# --- Services and inbound objects --------------------------------------------------------------


@resource_rule(
    "service-cluster-ip-only",
    "Services are ClusterIP only: no NodePort, LoadBalancer, ExternalName or external IPs.",
    "Remove spec.type (ClusterIP is the default), externalIPs and loadBalancerSourceRanges; the "
    "platform reaches MCP servers through the outbound tunnel, never through an open port.",
    kinds={"Service"},
)
def service_cluster_ip_only(resource: Resource, settings: Settings) -> Iterator[str]:
    spec = resource.spec
    kind = spec.get("type") or "ClusterIP"
    if kind != "ClusterIP":
        yield f"type {kind} makes the Service reachable from outside the cluster"
    if as_list(spec.get("externalIPs")):
        yield f"externalIPs {list(as_list(spec.get('externalIPs')))} accept traffic from outside"
    if as_list(spec.get("loadBalancerSourceRanges")):
        yield "loadBalancerSourceRanges opens a load balancer to outside addresses"
    for annotation in EXPOSING_ANNOTATIONS:
        if resource.annotations.get(annotation) not in (None, "", "false"):
            yield f"annotation {annotation} has an operator expose it outside the cluster"


@resource_rule(
    "no-ingress",
    "No Ingress objects: nothing routes traffic from outside into the perimeter.",
    "Delete the Ingress (or Route, HTTPProxy, IngressRoute, VirtualServer, public Knative "
    "Service, Istio Gateway, ...); MCP servers are reached only through the outbound MCP tunnel.",
    kinds=INGRESS_KINDS,
)
def no_ingress(resource: Resource, settings: Settings) -> Iterator[str]:
    if resource.kind not in INGRESS_KINDS_BY_GROUP.get(resource.group, ()):
        return
    cluster_local = any(
        resource.labels.get(k) == "cluster-local" for k in KNATIVE_VISIBILITY_LABELS
    )
    knative = resource.group == "serving.knative.dev" and resource.kind in ("Service", "Route")
    if knative and cluster_local:
        return  # reachable only inside the cluster
    if resource.group in ("networking.istio.io", "gateway.solo.io") and resource.kind == (
        "VirtualService"
    ):
        gateways = {str(g) for g in as_list(resource.spec.get("gateways"))}
        if resource.group == "networking.istio.io" and gateways <= {"mesh"}:
            return  # routing between sidecars, bound to no ingress gateway
    yield (
        f"this {resource.kind} ({resource.group}) routes traffic from outside the cluster "
        "to its backends"
    )


@resource_rule(
    "no-gateway-api",
    "No Gateway API Gateways or routes: nothing accepts inbound connections.",
    "Delete the Gateway/route; the tunnel dials out to the platform, nothing listens outside.",
    kinds=GATEWAY_KINDS,
)
def no_gateway_api(resource: Resource, settings: Settings) -> Iterator[str]:
    if resource.group in GATEWAY_API_GROUPS:
        yield f"this {resource.kind} accepts inbound traffic into the cluster"


# --- host access -----------------------------------------------------------------------------


@resource_rule(
    "no-host-namespaces",
    "Pods do not share the node's network, PID or IPC namespace.",
    "Remove hostNetwork, hostPID and hostIPC (or set them to false).",
)
def no_host_namespaces(resource: Resource, settings: Settings) -> Iterator[str]:
    for pod in pod_views(resource):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.spec.get(field) is True:
                yield f"{where(resource, pod)}{field}: true gives the pod the node's namespace"


@resource_rule(
    "no-host-ports",
    "No container binds a port on the node (hostPort).",
    "Remove hostPort from the container ports; in-cluster peers use the pod or Service address.",
)
def no_host_ports(resource: Resource, settings: Settings) -> Iterator[str]:
    for pod in pod_views(resource):
        for label, container in containers(pod.spec):
            for port in as_list(container.get("ports")):
                host_port = as_map(port).get("hostPort")
                if host_port:
                    at = where(resource, pod)
                    yield f"{at}{label} binds hostPort {int(host_port)} on the node"


def _outbound_pods(inventory: Inventory) -> list[tuple[str | None, Mapping[str, Any], Resource]]:
    """(namespace, pod labels, workload) of every tunnel and sandbox runner."""
    return [
        (w.effective_namespace, pod_labels(w), w)
        for w in inventory.workloads
        if pod_labels(w).get(names.LABEL_NAME) in names.OUTBOUND_ONLY
    ]


@stack_rule(
    "no-service-for-outbound-workloads",
    "No Service selects the tunnel's or the sandbox runners' pods: they only dial out.",
    "Delete the Service or narrow its selector; the tunnel and sandbox runners need no Service.",
)
def no_service_for_outbound_workloads(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    outbound = _outbound_pods(inventory)
    for service in inventory.kind("Service"):
        selector = as_map(service.spec.get("selector"))
        named = selector.get(names.LABEL_NAME) or selector.get(names.LABEL_COMPONENT)
        if named in names.OUTBOUND_ONLY:
            yield service, f"its selector picks the {named} pods, which must never be reachable"
            continue
        for namespace, labels, workload in outbound:
            if namespace == service.effective_namespace and labels_match(selector, labels):
                yield service, f"its selector matches the pods of {workload.ref}"


# The tunnel chart's metrics container ports: cloudflared's, and the proxy's when declared.
METRICS_PORT_NAMES = frozenset({"metrics", "proxy-metrics"})


def _scraper_problems(peer: Mapping[str, Any]) -> str | None:
    """A peer is a named scraper only as one namespace (by name) AND labelled pods in it."""
    namespaces = as_map(as_map(peer.get("namespaceSelector")).get("matchLabels"))
    pods = as_map(peer.get("podSelector"))
    if set(peer) - {"namespaceSelector", "podSelector"}:
        return "admits an address block, not a scraper's pods"
    if set(as_map(peer.get("namespaceSelector"))) != {"matchLabels"} or set(namespaces) != {
        names.NAMESPACE_NAME_LABEL
    }:
        return "names no single namespace by kubernetes.io/metadata.name"
    if set(pods) != {"matchLabels"} or not as_map(pods.get("matchLabels")):
        return "admits every pod of that namespace, not the scraper's pods by label"
    return None


def _scraper_is_a_workload(
    peer: Mapping[str, Any], namespace: str | None, inventory: Inventory
) -> str | None:
    """A scraper inside the policy's own namespace must be a pod no workload there is: else
    that workload (sandbox code, say) reaches the tunnel's metrics ports as the scraper."""
    named = as_map(as_map(peer.get("namespaceSelector")).get("matchLabels"))
    if named.get(names.NAMESPACE_NAME_LABEL) != namespace:
        return None
    selector = peer.get("podSelector")
    for workload in inventory.workloads:
        if workload.effective_namespace == namespace and selector_matches(
            selector, pod_labels(workload)
        ):
            return (
                f"admits {workload.ref} as the scraper: a scraper is no workload of the namespace"
            )
    return None


def _metrics_port_problems(ports: Sequence[Any]) -> str | None:
    if not ports:
        return "admits every port, not only the metrics ports"
    for port in ports:
        port = as_map(port)
        if port.get("protocol", "TCP") != "TCP" or "endPort" in port:
            return f"admits {port.get('protocol', 'TCP')} {port.get('port')}-{port.get('endPort')}"
        if port.get("port") not in METRICS_PORT_NAMES:
            return (
                f"admits port {port.get('port')!r}; only the named metrics ports "
                f"({', '.join(sorted(METRICS_PORT_NAMES))}) may be scraped"
            )
    return None


@stack_rule(
    "outbound-only-ingress",
    "Nothing dials the tunnel or the sandbox runners; only a named Prometheus scraper may reach "
    "the tunnel's metrics ports.",
    "Remove the ingress rule; to scrape the tunnel set `metrics: {scraper_namespace, "
    "scraper_pod_labels}` in the stack, which admits those pods on the metrics ports only.",
)
def outbound_only_ingress(inventory: Inventory, settings: Settings) -> Iterator[tuple[Target, str]]:
    outbound = _outbound_pods(inventory)
    for policy in inventory.kind("NetworkPolicy"):
        rules = as_list(policy.spec.get("ingress"))
        if not rules:
            continue
        selector = policy.spec.get("podSelector")
        selected = [
            (labels.get(names.LABEL_NAME), workload)
            for namespace, labels, workload in outbound
            if namespace == policy.effective_namespace and selector_matches(selector, labels)
        ]
        for component, workload in selected:
            if component != names.COMPONENT_TUNNEL:
                yield policy, f"admits ingress to {workload.ref}, which only ever dials out"
                continue
            for i, rule in enumerate(rules, start=1):
                rule = as_map(rule)
                peers = as_list(rule.get("from"))
                problem = _metrics_port_problems(as_list(rule.get("ports")))
                if not peers:
                    problem = "admits every source"
                for peer in peers:
                    problem = problem or _scraper_problems(as_map(peer))
                    problem = problem or _scraper_is_a_workload(
                        as_map(peer), policy.effective_namespace, inventory
                    )
                if problem:
                    yield policy, f"ingress rule {i} to {workload.ref} {problem}"


def _endpoint_targets(resource: Resource) -> Iterator[Mapping[str, Any]]:
    """targetRefs of an Endpoints' subsets or an EndpointSlice's endpoints."""
    if resource.kind == "Endpoints":
        for subset in as_list(resource.props.get("subsets")):
            for field in ("addresses", "notReadyAddresses"):
                for address in as_list(as_map(subset).get(field)):
                    yield as_map(as_map(address).get("targetRef"))
    else:
        for endpoint in as_list(resource.props.get("endpoints")):
            yield as_map(as_map(endpoint).get("targetRef"))


@stack_rule(
    "no-hand-made-pod-endpoints",
    "No hand-made Endpoints or EndpointSlice points a Service at pods: a selector-less Service "
    "would route to pods no selector names.",
    "Delete the Endpoints/EndpointSlice and give the Service a selector (the controller then "
    "keeps its endpoints); hand-made endpoints are for addresses outside the cluster only.",
)
def no_hand_made_pod_endpoints(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for resource in inventory.kind("Endpoints", "EndpointSlice"):
        if resource.group not in ("core", "discovery.k8s.io"):
            continue
        pods = sorted(
            {
                str(t.get("name") or "?")
                for t in _endpoint_targets(resource)
                if t.get("kind") == "Pod"
            }
        )
        if pods:
            yield resource, f"routes its Service to pods {', '.join(pods)} by hand"


# --- NetworkPolicies -------------------------------------------------------------------------


def policy_types(spec: Mapping[str, Any]) -> set[str]:
    """policyTypes as Kubernetes defaults them when the field is left out."""
    types = {str(t) for t in as_list(spec.get("policyTypes"))}
    if not types:
        types = {"Ingress"} | ({"Egress"} if as_list(spec.get("egress")) else set())
    return types


@stack_rule(
    "namespace-default-deny",
    "Every namespace has a default-deny NetworkPolicy for both ingress and egress.",
    "Add a NetworkPolicy with podSelector: {}, policyTypes: [Ingress, Egress] and no rules; "
    "allow rules then open only what each workload needs.",
)
def namespace_default_deny(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    namespaces: dict[str, Resource | None] = {
        ns.object_name: ns for ns in inventory.kind("Namespace")
    }
    for workload in inventory.workloads:
        namespaces.setdefault(workload.effective_namespace or "default", None)
    denied: dict[str, set[str]] = {}
    for policy in inventory.kind("NetworkPolicy"):
        spec = policy.spec
        if not selector_is_empty(spec.get("podSelector")):
            continue
        types = policy_types(spec)
        closed = denied.setdefault(policy.effective_namespace or "default", set())
        if "Ingress" in types and not as_list(spec.get("ingress")):
            closed.add("ingress")
        if "Egress" in types and not as_list(spec.get("egress")):
            closed.add("egress")
    for namespace, resource in sorted(namespaces.items()):
        missing = [d for d in ("ingress", "egress") if d not in denied.get(namespace, set())]
        if missing:
            target: Target = resource or f"Namespace/-/{namespace}"
            yield target, f"namespace {namespace} has no default deny for {' and '.join(missing)}"


@resource_rule(
    "ingress-from-scoped-sources",
    "NetworkPolicies admit ingress only from named pods: never from an ipBlock or every namespace.",
    "Replace the ipBlock / empty namespaceSelector with a podSelector (and a namespaceSelector "
    "naming one namespace) for the one client that needs access.",
    kinds={"NetworkPolicy"},
)
def ingress_from_scoped_sources(resource: Resource, settings: Settings) -> Iterator[str]:
    for i, rule in enumerate(as_list(resource.spec.get("ingress")), start=1):
        peers = as_list(as_map(rule).get("from"))
        if not peers:
            yield f"ingress rule {i} has no `from`: it admits every source, outside the cluster too"
        for peer in peers:
            peer = as_map(peer)
            block = peer.get("ipBlock")
            if block is not None:
                yield f"ingress rule {i} admits ipBlock {as_map(block).get('cidr')}"
            elif peer.get("namespaceSelector") is not None and matches_every_namespace(
                peer.get("namespaceSelector")
            ):
                yield (
                    f"ingress rule {i} admits pods of (nearly) every namespace: its "
                    "namespaceSelector names no namespace"
                )


# Every namespace carries this label (set by the API server), so `Exists` on it matches all.
def matches_every_namespace(selector: Any) -> bool:
    """A namespaceSelector that does not narrow to named namespaces, however it is written.

    Only a matchLabels pair, an `In` expression, or `Exists` on a label other than the
    one every namespace has, narrows it; `NotIn` and `DoesNotExist` alone leave every
    namespace but a few (any namespace created later included).
    """
    selector = as_map(selector)
    if as_map(selector.get("matchLabels")):
        return False
    for expression in as_list(selector.get("matchExpressions")):
        expression = as_map(expression)
        operator = expression.get("operator")
        if operator == "In":
            return False
        if operator == "Exists" and expression.get("key") != names.NAMESPACE_NAME_LABEL:
            return False
    return True


def _network(text: Any) -> Network | None:
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None


def _subtract(pieces: list[Network], hole: Network) -> list[Network]:
    """CIDR set difference; blocks are either nested or disjoint, never partly overlapping."""
    out: list[Network] = []
    for piece in pieces:
        if piece.version != hole.version or not piece.overlaps(hole):
            out.append(piece)
        elif not piece.subnet_of(hole):  # type: ignore[arg-type]
            out.extend(piece.address_exclude(hole))  # type: ignore[arg-type]
    return out


def _egress_peers(resource: Resource) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
    """(rule number, peer) per egress destination; peer None when a rule has no `to` at all."""
    for i, rule in enumerate(as_list(resource.spec.get("egress")), start=1):
        peers = as_list(as_map(rule).get("to"))
        if not peers:
            yield i, None
        for peer in peers:
            yield i, as_map(peer)


def _ip_block(peer: Mapping[str, Any]) -> tuple[str, Network | None, list[Network]] | None:
    block = peer.get("ipBlock")
    if block is None:
        return None
    block = as_map(block)
    cidr = str(block.get("cidr"))
    excepts = [n for n in (_network(e) for e in as_list(block.get("except"))) if n is not None]
    return cidr, _network(cidr), excepts


@resource_rule(
    "egress-only-to-allowed-cidrs",
    "Egress ipBlocks reach only the ranges the environment declares (the platform API and tunnel "
    "edge, its databases and backends), never 0.0.0.0/0, ::/0, a whole private range or the pod "
    "range, and none broader than min_cidr_prefix.",
    "Give every egress rule a `to`; point ipBlocks at the platform API and tunnel-edge ranges and "
    "at each database's or backend's own narrow range (the stack config's platform.*, "
    "databases.*.cidrs and backends[].cidrs; policy config allowedEgressCidrs).",
    kinds={"NetworkPolicy"},
    config_schema={
        "allowedEgressCidrs": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_ALLOWED_EGRESS_CIDRS),
            "description": "Ranges egress may reach (the platform API and tunnel edge; with "
            "declaredOnly, also the environment's databases and backends).",
        },
        "declaredOnly": {
            "type": "boolean",
            "default": False,
            "description": "allowedEgressCidrs is the environment's whole declaration: private "
            "space outside it is refused too.",
        },
        "minCidrPrefix": {
            "type": "object",
            "properties": {"ipv4": {"type": "integer"}, "ipv6": {"type": "integer"}},
            "default": {"ipv4": DEFAULT_MIN_CIDR_PREFIX[0], "ipv6": DEFAULT_MIN_CIDR_PREFIX[1]},
            "description": "The broadest ipBlock prefix per family (the stack's min_cidr_prefix).",
        },
    },
)
def egress_only_to_allowed_cidrs(resource: Resource, settings: Settings) -> Iterator[str]:
    if "Egress" not in policy_types(resource.spec):
        return
    for i, peer in _egress_peers(resource):
        if peer is None:
            yield f"egress rule {i} has no `to`: it allows every destination (0.0.0.0/0 and ::/0)"
            continue
        block = _ip_block(peer)
        if block is None:
            continue
        cidr, network, excepts = block
        if network is None:
            yield f"egress rule {i}: ipBlock {cidr!r} is not a CIDR"
            continue
        left = [network]
        internal = () if settings.declared_only else INTERNAL_NETWORKS
        for hole in (*excepts, *internal, *settings.allowed_networks):
            left = _subtract(left, hole)
        limit = settings.min_prefix(network.version)
        if left and _is_internal(left[0]):
            yield (
                f"egress rule {i} allows ipBlock {cidr}, which reaches cluster or VPC addresses "
                f"the environment does not declare (for example {left[0]}); name the database's "
                "or backend's own range"
            )
        elif left:
            yield (
                f"egress rule {i} allows ipBlock {cidr}, which reaches public addresses outside "
                f"the allowed platform ranges (for example {left[0]})"
            )
        elif not settings.declared_only and network.prefixlen < limit:
            # Nothing declared to judge against: a block this wide is a wish to reach everything.
            yield (
                f"egress rule {i}: ipBlock {cidr} is broader than /{limit} (min_cidr_prefix): "
                "it reaches everything behind it, pods and nodes of the cluster included"
            )


def _is_internal(network: Network) -> bool:
    return any(network.version == n.version and network.subnet_of(n) for n in INTERNAL_NETWORKS)  # type: ignore[arg-type]


@resource_rule(
    "metadata-endpoint-unreachable",
    "No NetworkPolicy lets a pod reach a cloud metadata endpoint (169.254.169.254, "
    "fd00:ec2::254, 169.254.170.2, ...), in any IPv4 or IPv6 spelling.",
    "Add the metadata addresses (e.g. 169.254.0.0/16, fd00:ec2::/64, fd20:ce::/64) to the "
    "ipBlock's `except`, or narrow the ipBlock to the platform ranges.",
    kinds={"NetworkPolicy"},
)
def metadata_endpoint_unreachable(resource: Resource, settings: Settings) -> Iterator[str]:
    if "Egress" not in policy_types(resource.spec):
        return
    for i, peer in _egress_peers(resource):
        if peer is None:
            yield f"egress rule {i} has no `to`, so the metadata endpoints are reachable"
            continue
        block = _ip_block(peer)
        if block is None or block[1] is None:
            continue
        cidr, network, excepts = block
        found = reachable_metadata(network, excepts)  # type: ignore[arg-type]
        if found:
            shown = ", ".join(str(a) for a in found[:3])
            yield f"egress rule {i}: ipBlock {cidr} includes metadata endpoint {shown}"


RULES = (
    service_cluster_ip_only,
    no_ingress,
    no_gateway_api,
    no_host_namespaces,
    no_host_ports,
    no_service_for_outbound_workloads,
    outbound_only_ingress,
    no_hand_made_pod_endpoints,
    namespace_default_deny,
    ingress_from_scoped_sources,
    egress_only_to_allowed_cidrs,
    metadata_endpoint_unreachable,
)
