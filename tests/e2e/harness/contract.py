"""Offline equals real: every object the offline render holds exists in the cluster after
`pulumi up`, and every field the render sets has the same value there.

The API server only adds to what was applied (defaults, status, server metadata), so
"rendered is a subset of live" is exactly "the render is what the engine deployed".
Secret values are placeholders offline and are not compared; nor are the certificates the
engine generates at `up` (the upstream CA and the checksums that roll pods onto a renewed
certificate), which a test of their own checks against the live certificates.
"""

from __future__ import annotations

from typing import Any

from infra.pure.naming import (
    ANNOTATION_SERVING_CERTIFICATE,
    ANNOTATION_UPSTREAM_CA,
    UPSTREAM_CA_CONFIG_MAP,
    issued_base,
)

UNCOMPARED = {("Secret", "stringData"), ("Secret", "data")}
# (kind, name prefix or None for any, path prefix): values the engine generates at `up`.
GENERATED = (
    ("ConfigMap", UPSTREAM_CA_CONFIG_MAP, ".data"),
    ("Deployment", None, f".spec.template.metadata.annotations.{ANNOTATION_SERVING_CERTIFICATE}"),
    ("Deployment", None, f".spec.template.metadata.annotations.{ANNOTATION_UPSTREAM_CA}"),
)


def differences(rendered: Any, live: Any, path: str = "") -> list[str]:
    if isinstance(rendered, dict):
        if not isinstance(live, dict):
            return [f"{path}: rendered a mapping, live has {live!r}"]
        found = []
        for key, value in rendered.items():
            if key not in live:
                if value in ({}, [], None, False):
                    continue  # an empty value the API server omits
                found.append(f"{path}.{key}: missing in the cluster")
                continue
            found += differences(value, live[key], f"{path}.{key}")
        return found
    if isinstance(rendered, list):
        if not isinstance(live, list) or len(live) != len(rendered):
            return [f"{path}: rendered {len(rendered)} item(s), live has {live!r}"]
        return [
            d
            for i, (r, v) in enumerate(zip(rendered, live, strict=True))
            for d in differences(r, v, f"{path}[{i}]")
        ]
    if (
        isinstance(rendered, str)
        and isinstance(live, str)
        and issued_base(rendered)
        and issued_base(rendered) == issued_base(live)
    ):
        return []
    if rendered != live and str(rendered) != str(live):
        return [f"{path}: rendered {rendered!r}, live {live!r}"]
    return []


def generated(kind: str, name: str, difference: str) -> bool:
    path = difference.split(": ", 1)[0].removeprefix(f"{kind}/{name}")
    return any(
        kind == k and (n is None or name.startswith(n)) and path.startswith(suffix)
        for k, n, suffix in GENERATED
    )


def compare_object(rendered: dict[str, Any], live: dict[str, Any]) -> list[str]:
    kind, name = rendered["kind"], rendered["metadata"]["name"]
    trimmed = {k: v for k, v in rendered.items() if (kind, k) not in UNCOMPARED}
    return [d for d in differences(trimmed, live, f"{kind}/{name}") if not generated(kind, name, d)]
