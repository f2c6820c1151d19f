"""What a bounded `up` or `destroy` was still waiting for when its bound ran out, so the
failure names objects rather than a timeout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def _items(kubectl: Path, kubeconfig: Path, kinds: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "get", kinds, "-A", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return json.loads(done.stdout).get("items", []) if done.returncode == 0 else []


def conditions(obj: dict[str, Any]) -> dict[str, str]:
    """A status's conditions as type -> status."""
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}


def _why(obj: dict[str, Any]) -> str | None:
    kind, meta, status = obj["kind"], obj["metadata"], obj.get("status", {})
    if meta.get("deletionTimestamp"):
        return f"terminating since {meta['deletionTimestamp']}"
    if meta.get("namespace") in ("kube-system", "kube-public", "kube-node-lease"):
        return None
    if kind == "Pod" and status.get("phase") not in ("Running", "Succeeded"):
        return f"phase {status.get('phase', 'unset')}"
    if kind == "Deployment" and conditions(obj).get("Available") != "True":
        return "not Available"
    if kind == "Job" and "True" not in (
        conditions(obj).get("Complete"),
        conditions(obj).get("Failed"),
    ):
        return "not finished"
    return None


def pending_objects(kubectl: Path, kubeconfig: Path) -> list[str]:
    """Objects still terminating, or pods, Deployments and Jobs not yet where they settle."""
    found = []
    for obj in _items(kubectl, kubeconfig, "namespaces,pods,deployments,jobs"):
        why = _why(obj)
        if why:
            meta = obj["metadata"]
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            found.append(f"{obj['kind']} {where}{meta['name']} ({why})")
    return found
