"""`python -m infra check`: the policy pack's rules, offline, on an environment or a folder.

The very rules `pulumi preview --policy-pack policies` runs, on the objects
`render` would write (or on any folder of YAML manifests), with no Pulumi CLI,
cluster or cloud. Exit 0 when no mandatory rule fails, 1 when one does, 2 when
the input cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from infra.contract.kinds import CLUSTER_SCOPED
from infra.offline.commands.source import Source, add_source_arguments, load_source
from infra.offline.errors import ConfigError
from infra.offline.locations import Location, locate_dir, locate_in_stack_file
from infra.offline.manifests import Manifest, ManifestError, ref
from infra.offline.sarif import render_sarif
from infra.offline.tools import RenderError, ToolMissing
from policies.rules import TIERS, Resource, Violation, evaluate, sql
from policies.rules.inventory import role_sql_texts


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="run the policy rules on an environment or a folder of manifests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser, allow_dir=True)
    parser.add_argument(
        "--tier",
        choices=TIERS,
        help="rule levels of this tier (default: the stack's tier; dev for a folder)",
    )
    parser.add_argument(
        "--namespace",
        help="where objects without a namespace would land (default: the stack's namespace; for "
        "a folder, its one Namespace object)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="sarif: SARIF 2.1.0 for code scanning; each result at its object's file and line "
        "(for --stack/--config: the line of the stack file that declares the object)",
    )
    parser.set_defaults(func=run)


def landing_namespace(source: Source, namespace: str | None) -> str | None:
    """Where namespace-less objects land: --namespace, the stack's, or the folder's only one."""
    if namespace:
        return namespace
    if source.config is not None:
        return source.config.namespace
    declared = {
        str((m.get("metadata") or {}).get("name"))
        for m in source.manifests
        if m.get("kind") == "Namespace"
    }
    return declared.pop() if len(declared) == 1 else None


def place(manifests: list[Manifest], namespace: str | None) -> list[Manifest]:
    """Objects with the namespace they would land in; refused when that is unknown."""
    placed: list[Manifest] = []
    homeless: list[str] = []
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        if manifest.get("kind") in CLUSTER_SCOPED or meta.get("namespace"):
            placed.append(manifest)
        elif namespace is None:
            homeless.append(ref(manifest))
        else:
            placed.append({**manifest, "metadata": {**meta, "namespace": namespace}})
    if homeless:
        shown = ", ".join(homeless[:5]) + (", ..." if len(homeless) > 5 else "")
        raise ManifestError(
            f"{len(homeless)} object(s) have no namespace ({shown}) and the folder does not say "
            "where they would land: give --namespace"
        )
    return placed


def check(
    source: Source, tier: str | None = None, namespace: str | None = None
) -> tuple[str, int, list[Violation]]:
    manifests = place(source.manifests, landing_namespace(source, namespace))
    resources = [Resource.from_manifest(m) for m in manifests]
    tier = tier or source.tier
    cidrs = None
    if source.config is not None:
        from infra.pure.network import allowed_egress_cidrs

        cidrs = allowed_egress_cidrs(source.config)
    found = evaluate(
        resources, tier=tier, allowed_egress_cidrs=cidrs, declared_only=cidrs is not None
    )
    return tier, len(resources), found


def render_text(label: str, tier: str, count: int, violations: Sequence[Violation]) -> str:
    """Violations grouped by rule and hint: the hint is printed once under its findings."""
    groups: dict[tuple[str, str, str], list[Violation]] = {}
    for v in violations:
        groups.setdefault((v.enforcement, v.rule_id, v.hint), []).append(v)
    lines: list[str] = []
    for (enforcement, rule_id, hint), found in groups.items():
        lines += [f"[{enforcement}] {rule_id} {v.resource}: {v.message}" for v in found]
        lines.append(f"    hint ({len(found)}x): {hint}" if len(found) > 1 else f"    hint: {hint}")
    mandatory = sum(v.mandatory for v in violations)
    if violations:
        lines.append(
            f"{label}: {len(violations)} violation(s), {mandatory} mandatory, "
            f"{len(violations) - mandatory} advisory, in {count} objects (tier {tier})"
        )
    else:
        lines.append(f"{label}: {count} objects pass every rule (tier {tier})")
    return "\n".join(lines)


def render_json(label: str, tier: str, count: int, violations: Sequence[Violation]) -> str:
    mandatory = sum(v.mandatory for v in violations)
    return json.dumps(
        {
            "source": label,
            "tier": tier,
            "objects": count,
            "mandatory": mandatory,
            "advisory": len(violations) - mandatory,
            "violations": [v.as_dict() for v in violations],
        },
        indent=2,
    )


def sarif_report(args: argparse.Namespace, source: Source, violations: Sequence[Violation]) -> str:
    """A folder's objects sit at their own file and line, relative to the folder (uri base
    `CHECKED`); a stack's rendered objects exist in no file of the repository, so their results
    sit in the stack file, relative to the repository root (`SRCROOT`)."""
    path = getattr(args, "path", None)
    if path is not None:
        folder = Path(path).resolve()
        locations = locate_dir(folder)
        root = folder if folder.is_dir() else folder.parent
        fallback = Location(folder.name if folder.is_file() else ".", 1)
        return render_sarif(
            violations, locations, fallback, uri_base="CHECKED", base_uri=root.as_uri() + "/"
        )
    from infra.pure.config import stack_file

    stack = (Path(args.config) if args.config else stack_file(args.stack)).resolve()
    root = stack_file("any").parent
    relative = stack.relative_to(root).as_posix() if stack.is_relative_to(root) else stack.name
    locations = locate_in_stack_file(stack, source.manifests, relative)
    fallback = Location(relative, 1)
    return render_sarif(violations, locations, fallback, uri_base="SRCROOT")


SPLIT_SQL_FROM = 200_000  # characters: below this, handing a script over costs more


class RoleSqlReader:
    """Role SQL is what the rules take longest to read: it is analysed as soon as the object
    holding it is loaded, while the rest of the folder is still being parsed (a big script on
    the workers, in halves). `finish` waits for that; the rules then find it done."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], sql.Analysis]] = []

    def __call__(self, manifests: list[Manifest], submit: sql.Submit | None) -> None:
        for manifest in manifests:
            if manifest.get("kind") in ("ConfigMap", "Secret"):
                for _, text in role_sql_texts(Resource.from_manifest(manifest)):
                    if submit is not None and len(text) >= SPLIT_SQL_FROM:
                        self.pending.append(sql.analyse_on(text, submit))

    def finish(self) -> None:
        for pending in self.pending:
            pending()


def run(args: argparse.Namespace) -> int:
    try:
        role_sql = RoleSqlReader()
        source = load_source(args, on_loaded=role_sql)
        role_sql.finish()
        tier, count, violations = check(
            source, getattr(args, "tier", None), getattr(args, "namespace", None)
        )
    except (ConfigError, ManifestError, RenderError, ToolMissing) as exc:
        print(f"check: cannot read the input: {exc}", file=sys.stderr)
        return 2
    if args.format == "sarif":
        print(sarif_report(args, source, violations))
    else:
        render = render_json if args.format == "json" else render_text
        print(render(source.label, tier, count, violations))
    return 1 if any(v.mandatory for v in violations) else 0
