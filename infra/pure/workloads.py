"""Pod hardening shared by what the program runs itself (the charts carry their own copy)."""

from __future__ import annotations

from typing import Any

NONROOT_UID = 65532


def restricted_pod_security() -> dict[str, Any]:
    """Pod Security `restricted`, set explicitly rather than left to admission defaults."""
    return {
        "runAsNonRoot": True,
        "runAsUser": NONROOT_UID,
        "runAsGroup": NONROOT_UID,
        "fsGroup": NONROOT_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
