"""The audit as one pull-request comment: a summary, the flags, and folded details.

GitHub refuses a comment over 65,536 characters, and a 20-server environment's
full report is longer than that; this view keeps what a reviewer decides on
(flags, mandatory findings) open, folds the matrices into `<details>`, writes
each external range by what it is, and groups what repeats (per-tool database
roles, one finding on many objects). The full report goes to a file
(`--out`), which CI keeps as an artifact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from infra.offline.audit.core import Audit
from infra.offline.audit.network import Direction
from infra.offline.audit.report import (
    NO_FLAGS,
    Namer,
    _fold,
    _header,
    code,
    flag_rows,
    md_table,
)

COMMENT_LIMIT = 65_536  # GitHub's limit on one comment, in characters
BUDGET = 60_000  # what this view aims for, leaving room for the marker and the workflow's text
# The workflow finds its previous comment by this first line and edits it in place.
MARKER = "<!-- agent-perimeter-audit {label} -->"
EXAMPLES = 3  # objects named per grouped finding


def marker(label: str) -> str:
    return MARKER.format(label=label)


def _peers(d: Direction, name: Namer) -> str:
    if not d.isolated:
        return "⚠️ **open**"
    if not d.allowances:
        return "nothing"
    seen: dict[str, list[str]] = {}
    for a in d.allowances:
        seen.setdefault(name.peer(a.peer), []).append(a.ports.text())
    return "<br>".join(f"{peer} {' '.join(dict.fromkeys(ports))}" for peer, ports in seen.items())


def _network(audit: Audit, name: Namer) -> list[str]:
    rows = [
        [code(name(ref)), _peers(w.ingress, name), _peers(w.egress, name)]
        for ref, w in sorted(audit.network.workloads.items(), key=lambda kv: name(kv[0]))
    ]
    table = md_table(["workload", "ingress from", "egress to"], rows)
    flows = len(audit.network.flows)
    return _fold(f"Network: {len(rows)} workloads, {flows} flows between them", table)


def _credentials(audit: Audit, name: Namer) -> list[str]:
    held: dict[str, Counter[str]] = {}
    unread = []
    for c in audit.credentials.credentials:
        if not c.reader_workloads:
            unread.append(c.name)
        for w in c.reader_workloads:
            held.setdefault(name(w), Counter())[c.kind or "?"] += 1
    rows = [
        [code(w), ", ".join(f"{n}x {code(kind)}" for kind, n in sorted(kinds.items()))]
        for w, kinds in sorted(held.items())
    ]
    if unread:
        rows.append(["⚠️ nobody", ", ".join(map(code, unread))])
    total = len(audit.credentials.credentials)
    return _fold(
        f"Credentials: {total} Secrets held by {len(held)} workloads",
        md_table(["workload", "holds"], rows),
    )


def _vault(audit: Audit) -> list[str]:
    if not audit.vault_credentials:
        return []
    rows = (
        [code(c["mcp_server"]), code(c["mcp_server_url"]), ", ".join(map(code, c["agents"])) or "—"]
        for c in audit.vault_credentials
    )
    return _fold(
        f"Vault credentials: {len(audit.vault_credentials)}, one per MCP server",
        md_table(["MCP server", "for URL", "agents"], rows),
    )


def _policy(audit: Audit, name: Namer) -> list[str]:
    policy = audit.policy
    if not policy.available:
        return [f"Policy rules not run: {policy.note}."]
    if not policy.violations:
        return [f"Policy rules: no violations ({policy.note})."]
    groups: dict[tuple[str, str], list[str]] = {}
    for v in policy.violations:
        groups.setdefault((v.enforcement, v.rule_id), []).append(name(v.resource))
    rows = []
    for (level, rule), objects in sorted(groups.items()):
        shown = ", ".join(map(code, objects[:EXAMPLES]))
        more = f" and {len(objects) - EXAMPLES} more" if len(objects) > EXAMPLES else ""
        rows.append([code(rule), level, str(len(objects)), shown + more])
    table = md_table(["rule", "level", "objects", "for example"], rows)
    open_ = bool(policy.mandatory)
    return (
        table
        if open_
        else _fold(f"Policy rules: {len(policy.violations)} advisory finding(s)", table)
    )


def _flags(audit: Audit, name: Namer) -> list[str]:
    if not audit.flags:
        return [NO_FLAGS]
    return md_table(["", "flag", "subject", "finding"], flag_rows(audit.flags, name))


def render_pr(audit: Audit, full_report: str | None = None) -> str:
    """One comment; `full_report` names where the complete Markdown was written."""
    name = Namer(audit.namespaces, audit.destinations, brief=True)
    footer = (
        f"Full report (every object, CIDRs, per-tool roles): {code(full_report)}."
        if full_report
        else "Full report: `python -m infra audit` without `--format pr`."
    )
    folded: list[Callable[[], list[str]]] = [
        lambda: _network(audit, name),
        lambda: _credentials(audit, name),
        lambda: _vault(audit),
    ]
    head = [
        [marker(audit.label), *_header(audit)],
        ["### Flags", "", *_flags(audit, name)],
        ["### Policy rules", "", *_policy(audit, name)],
    ]
    details = [section() for section in folded]
    text = _join([*head, *details, [footer]])
    # Drop folded detail, largest first, until the comment fits; the full report keeps it.
    while len(text) > BUDGET and any(details):
        largest = max(range(len(details)), key=lambda i: len("\n".join(details[i])))
        summary = details[largest][0].removeprefix("<details><summary>").removesuffix("</summary>")
        details[largest] = [f"{summary}: too long for one comment, see the full report."]
        text = _join([*head, *details, [footer]])
    return text


def _join(sections: list[list[str]]) -> str:
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"
