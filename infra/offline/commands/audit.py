"""`python -m infra audit`: the boundary audit of an environment, two environments, or a cluster.

  audit --stack <env> | --config <file> | <folder>   network matrix, credentials, policy results
  audit --diff <envA> <envB>                          what differs in reachability and credentials
  audit --diff <git-rev> [--stack <env>]              what the working tree changes against a
                                                      revision (the PR's base), per environment
  audit --live --stack <env> | --namespace <ns>       drift of a cluster against the program
                                                      (--namespace alone: the stack deploying it)
  audit --probe --stack <env> --probe-image <ref>     the network matrix tried by traffic: probe
                                                      pods stand in for each workload
  audit --tools <server>=<url> --stack <env>          a running server's advertised tools against
        --bearer-file <file> [--ca-file <file>]       the stack's grants and its agents' allowlists

Markdown by default (a pull-request comment), --format json for machines,
--diagram <file.svg|file.png> for a picture. Exit 0 with a report, 1 when live
mode finds drift, the probe a disagreement or --tools a mismatch, 2 when the input or the cluster
cannot be read. Live mode only lists and gets; it never changes the cluster,
and reads Secrets as metadata only. Probe mode creates and deletes only its own
probe pods (RBAC: pods create/get/list/delete and pods/log get in the
namespace; get services and endpointslices in default and the DNS namespace).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.offline.audit import (
    Audit,
    DiagramError,
    KubernetesReader,
    LiveError,
    audit_manifests,
    compare,
    diff_audits,
    read_cluster,
    render_diagram,
    render_diff_markdown,
    render_drift_markdown,
    render_json,
    render_markdown,
)
from infra.offline.audit.advertised import AdvertisedError, compare_tools, render_tool_lists
from infra.offline.audit.diagram import diagram_format
from infra.offline.audit.inventory import object_ref
from infra.offline.audit.live import ClusterReader, align_issued_names
from infra.offline.audit.pr import render_pr
from infra.offline.audit.probe import (
    DEFAULT_FORBIDDEN,
    Cluster,
    ProbeError,
    Target,
    config_targets,
    plan,
    probe_audit,
    render_table,
    run_probe,
)
from infra.offline.commands.revision import RevisionError, checkout, render_at, stacks_at
from infra.offline.commands.source import (
    Source,
    add_source_arguments,
    load_config,
    load_source,
    load_stack_source,
    source_of,
)
from infra.offline.manifests import Manifest
from infra.pure.config import ConfigError, PerimeterConfig, Tier, load_stack_file, stack_file
from infra.pure.naming import ANNOTATION_MCP_SERVER_URL

TIERS = [tier.value for tier in Tier]


class UsageError(Exception):
    """Options that do not go together."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="network and credential boundaries of an environment (or drift of a cluster)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser, allow_dir=True)
    parser.add_argument(
        "--format",
        choices=("md", "json", "pr"),
        default="md",
        help="pr: one pull-request comment (< 65,536 characters): summary, flags, folded details",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write the full report here (Markdown; JSON with --format json); with --format pr "
        "the comment still goes to stdout",
    )
    parser.add_argument("--diagram", metavar="FILE", help="also draw the boundaries (.svg or .png)")
    parser.add_argument("--tier", choices=TIERS, help="policy levels for a manifest folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--diff",
        nargs="+",
        metavar="REV_OR_ENV",
        help="two stack names: compare the environments; one git revision: compare each stack "
        "(or --stack's) at that revision with the working tree",
    )
    mode.add_argument("--live", action="store_true", help="compare a cluster with the program")
    mode.add_argument("--probe", action="store_true", help="try the network matrix with probe pods")
    mode.add_argument(
        "--tools",
        metavar="SERVER=URL",
        help="ask a running server for its tools (tools/list) and compare them with the stack's",
    )
    parser.add_argument(
        "--bearer-file", type=Path, help="the server's platform token, in a file (--tools)"
    )
    parser.add_argument(
        "--ca-file", type=Path, help="CA the server's certificate is checked against (--tools)"
    )
    parser.add_argument("--context", help="kubeconfig context (--live, --probe)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (--live, --probe)")
    parser.add_argument(
        "--namespace", help="namespace to read or probe (--live, --probe; default: the stack's)"
    )
    parser.add_argument(
        "--probe-image",
        metavar="REF",
        help="image of the probe tool (images/probe: a static binary, `probe listen|check`)",
    )
    parser.add_argument(
        "--forbidden",
        action="append",
        metavar="ADDR:PORT[/PROTO]",
        help=f"a destination no workload should reach, probed from each (repeatable; "
        f"default {', '.join(DEFAULT_FORBIDDEN)})",
    )
    parser.add_argument(
        "--udp-echo",
        action="store_true",
        help="the outside UDP endpoints echo a datagram back: probe UDP flows to them too",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if (args.context or args.namespace or args.kubeconfig) and not (args.live or args.probe):
            raise UsageError("--context, --kubeconfig and --namespace apply with --live or --probe")
        if (args.probe_image or args.forbidden or args.udp_echo) and not args.probe:
            raise UsageError("--probe-image, --forbidden and --udp-echo apply with --probe")
        if (args.bearer_file or args.ca_file) and not args.tools:
            raise UsageError("--bearer-file and --ca-file apply with --tools")
        if args.diagram:
            diagram_format(args.diagram)  # fail before any work, not after the report
        if args.diff:
            return _diff(args)
        if args.live:
            return _live(args, KubernetesReader(args.context, args.kubeconfig))
        if args.probe:
            return _probe(args)
        if args.tools:
            return _tools(args)
        return _report(args)
    except (UsageError, LiveError, DiagramError, ProbeError, AdvertisedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def audit_source(source: Source, *, policies: bool = True) -> Audit:
    """The audit of a loaded source, with the egress allowance `check` gives the policy pack."""
    cidrs = None
    if source.config is not None and policies:
        from infra.pure.network import allowed_egress_cidrs

        cidrs = allowed_egress_cidrs(source.config)
    audit = audit_manifests(
        source.manifests,
        label=source.label,
        tier=source.tier,
        default_namespace=source.config.namespace if source.config else "default",
        policies=policies,
        allowed_egress_cidrs=cidrs,
    )
    from infra.pure.network import destination_names

    audit.destinations = destination_names(source.config)
    if source.config is not None:
        from infra.offline.audit.platform import direct_path_flags, vault_credentials

        audit.vault_credentials = vault_credentials(source.config)
        audit.platform_flags = direct_path_flags(source.config)
    return audit


def _emit(text: str) -> None:
    sys.stdout.write(text)


def _diagram(args: argparse.Namespace, audit: Audit) -> None:
    if args.diagram:
        path = render_diagram(audit, args.diagram)
        print(f"diagram written to {path}", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    if args.tier and getattr(args, "path", None) is None:
        raise UsageError("--tier applies to a manifest folder; a stack has its own tier")
    audit = audit_source(load_source(args))
    full = render_json(audit) if args.format == "json" else render_markdown(audit)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(full)
    if args.format == "pr":
        _emit(render_pr(audit, full_report=Path(args.out).name if args.out else None))
    elif not args.out:
        _emit(full)
    _diagram(args, audit)
    return 0


def _diff(args: argparse.Namespace) -> int:
    if len(args.diff) == 1:
        return _diff_revision(args, args.diff[0])
    if len(args.diff) != 2:
        raise UsageError("--diff takes two stack names, or one git revision")
    if args.stack or args.config or getattr(args, "path", None) or args.diagram:
        raise UsageError("--diff takes two stack names and nothing else to read or draw")
    a, b = (audit_source(load_stack_source(s), policies=False) for s in args.diff)
    diff = diff_audits(a, b)
    _emit(
        json.dumps(diff.to_dict(), indent=2) + "\n"
        if args.format == "json"
        else render_diff_markdown(diff)
    )
    return 0


def _diff_revision(args: argparse.Namespace, rev: str) -> int:
    """Each environment at `rev` against the working tree: every value counts, since both
    sides are the same environment."""
    if args.config or getattr(args, "path", None) or args.diagram:
        raise UsageError("--diff <git-rev> compares stacks; give --stack to pick one")
    root = stack_file("any").parent
    empty = Source("", [], None, "dev")
    try:
        with checkout(rev, root) as tree:
            stacks = (
                [args.stack] if args.stack else sorted(set(stacks_at(root)) | set(stacks_at(tree)))
            )
            diffs = []
            for stack in stacks:
                base = render_at(tree, stack, f"{stack}@{rev}") or empty
                here = load_stack_source(stack) if stack_file(stack).exists() else empty
                diffs.append(
                    diff_audits(
                        audit_source(base, policies=False),
                        audit_source(here, policies=False),
                        per_environment=False,
                    )
                )
    except RevisionError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        _emit(json.dumps([d.to_dict() for d in diffs], indent=2) + "\n")
    else:
        _emit(
            "\n".join(
                render_diff_markdown(d, f"Boundary diff: {s}: {rev} → working tree")
                for s, d in zip(stacks, diffs, strict=True)
            )
        )
    return 0


def deployed_tunnel_domain(config: PerimeterConfig, live: list[Manifest]) -> str | None:
    """The tunnel domain in the MCP server URLs the live platform-token Secrets are bound to."""
    routes = {server.route_name for server in config.mcp_servers}
    for manifest in live:
        url = ((manifest.get("metadata") or {}).get("annotations") or {}).get(
            ANNOTATION_MCP_SERVER_URL, ""
        )
        host = urlsplit(url).hostname or ""
        route, _, domain = host.partition(".")
        if route in routes and domain:
            return domain
    return None


def shipped_stacks_by_namespace() -> dict[str, str]:
    owners = {}
    for path in sorted(stack_file("any").parent.glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        try:
            owners[load_stack_file(path).namespace] = stack
        except ConfigError:
            continue  # a broken stack file is reported when it is asked for, not here
    return owners


def stack_for_namespace(namespace: str | None) -> str:
    """Live mode compares against the stack that owns the namespace, never a silent default."""
    if not namespace:
        raise UsageError("--live needs --stack <env>, --config <file> or --namespace <ns>")
    owners = shipped_stacks_by_namespace()
    if namespace not in owners:
        known = ", ".join(f"{ns} ({stack})" for ns, stack in sorted(owners.items())) or "none"
        raise UsageError(
            f"no stack file deploys namespace {namespace!r} (known: {known}); "
            "give --stack or --config"
        )
    return owners[namespace]


def _live(args: argparse.Namespace, reader: ClusterReader) -> int:
    if not (args.stack or args.config or getattr(args, "path", None)):
        args.stack = stack_for_namespace(args.namespace)
    if getattr(args, "path", None):
        source = load_source(args)
        if not args.namespace:
            raise UsageError("give --namespace: a manifest folder does not name one")
        namespace = args.namespace
        live = read_cluster(reader, namespace)
    else:
        config = load_config(args)
        namespace = args.namespace or config.namespace
        live = read_cluster(reader, namespace)
        # The platform assigns the tunnel domain at `up`; offline it is a placeholder.
        # Compare against the domain the deployed URLs carry, not against the placeholder.
        domain = deployed_tunnel_domain(config, live.manifests)
        if domain and config.tunnel.domain is None:
            config = config.model_copy(
                update={"tunnel": config.tunnel.model_copy(update={"domain": domain})}
            )
        source = source_of(args.stack or str(args.config), config)
        source.manifests = align_issued_names(source.manifests, live.manifests)
    cidrs = None
    if source.config is not None:
        from infra.pure.network import allowed_egress_cidrs

        cidrs = allowed_egress_cidrs(source.config)
    drift = compare(
        source.manifests, live, source.label, tier=source.tier, allowed_egress_cidrs=cidrs
    )
    _emit(
        json.dumps(drift.to_dict(), indent=2) + "\n"
        if args.format == "json"
        else render_drift_markdown(drift)
    )
    if args.diagram:
        cluster = audit_manifests(live.manifests, label=f"cluster {namespace}", policies=False)
        _diagram(args, cluster)
    return 0 if drift.clean else 1


def _tools(args: argparse.Namespace) -> int:
    if not (args.stack or args.config):
        raise UsageError("--tools needs --stack <env> or --config <file>: it compares with a stack")
    server, sep, url = args.tools.partition("=")
    if not sep or not server or not url:
        raise UsageError(f"--tools: {args.tools!r} is not SERVER=URL")
    if args.bearer_file is None:
        raise UsageError("--tools needs --bearer-file: the server's platform token, in a file")
    if args.format not in ("md", "json"):
        raise UsageError("--tools prints md or json")
    lists = compare_tools(load_config(args), server, url, args.bearer_file, args.ca_file)
    if args.format == "json":
        document = {
            "server": lists.server,
            "granted": list(lists.granted),
            "allowlisted": sorted(lists.allowlisted),
            "advertised": list(lists.advertised),
            "problems": lists.problems,
        }
        _emit(json.dumps(document, indent=2) + "\n")
    else:
        _emit(render_tool_lists(lists))
    return 1 if lists.problems else 0


def _probe(args: argparse.Namespace) -> int:
    if not (args.stack or args.config):
        raise UsageError("--probe needs --stack <env> or --config <file>: it probes a stack")
    if not args.probe_image:
        raise UsageError(
            "--probe needs --probe-image: an image of images/probe your cluster can pull"
        )
    if args.format not in ("md", "json"):
        raise UsageError("--probe prints md or json")
    try:
        forbidden = [Target.parse(t) for t in (args.forbidden or DEFAULT_FORBIDDEN)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = load_config(args)
    namespace = args.namespace or config.namespace
    if namespace != config.namespace:
        config = config.model_copy(update={"namespace": namespace})
    source = source_of(args.stack or str(args.config), config)
    cluster = Cluster(args.kubeconfig, args.context)
    the_plan = plan(
        probe_audit(source.manifests, config),
        source.manifests,
        namespace,
        [*config_targets(config), *forbidden],
        dns_ref=object_ref("Deployment", config.cluster.dns_namespace, "kube-dns"),
        apiserver=cluster.apiserver(),
        udp_echo=args.udp_echo,
    )
    observations = run_probe(cluster, the_plan, args.probe_image)
    if args.format == "json":
        rows = [
            {
                "source": o.check.source,
                "destination": o.check.destination,
                "protocol": o.check.protocol,
                "port": o.check.port,
                "matrix": "allow" if o.check.expected else "deny",
                "observed": "reached" if o.reached else "blocked",
                "agrees": o.agrees,
                "detail": o.detail,
            }
            for o in observations
        ]
        _emit(json.dumps({"flows": rows, "not_probed": the_plan.skipped}, indent=2) + "\n")
    else:
        _emit(render_table(observations, the_plan.skipped))
    return 0 if all(o.agrees for o in observations) else 1
