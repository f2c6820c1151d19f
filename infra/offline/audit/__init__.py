"""The boundary audit: who may reach whom, who holds which credential, and the policy results.

Everything works on plain manifests (camelCase dicts), so the same code audits
the program's rendered objects, a folder of YAML and what a cluster returns.
"""

from infra.offline.audit.core import Audit, audit_manifests, redact
from infra.offline.audit.diagram import DiagramError, render_diagram
from infra.offline.audit.diff import AuditDiff, Change, diff_audits, render_diff_markdown
from infra.offline.audit.live import (
    ClusterReader,
    Drift,
    KubernetesReader,
    LiveError,
    RecordedReader,
    compare,
    read_cluster,
    render_drift_markdown,
)
from infra.offline.audit.report import render_json, render_markdown, to_dict

__all__ = [
    "Audit",
    "AuditDiff",
    "Change",
    "ClusterReader",
    "DiagramError",
    "Drift",
    "KubernetesReader",
    "LiveError",
    "RecordedReader",
    "audit_manifests",
    "compare",
    "diff_audits",
    "read_cluster",
    "redact",
    "render_diagram",
    "render_diff_markdown",
    "render_drift_markdown",
    "render_json",
    "render_markdown",
    "to_dict",
]
