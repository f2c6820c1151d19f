"""Offline equals real: every object the offline render holds exists in the cluster after
`pulumi up`, and every field the render sets has the same value there.

The API server only adds to what was applied (defaults, status, server metadata), so
"rendered is a subset of live" is exactly "the render is what the engine deployed".
Secret values are placeholders offline and are not compared.
"""

from __future__ import annotations

from typing import Any

UNCOMPARED = {("Secret", "stringData"), ("Secret", "data")}


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
    if rendered != live and str(rendered) != str(live):
        return [f"{path}: rendered {rendered!r}, live {live!r}"]
    return []


def compare_object(rendered: dict[str, Any], live: dict[str, Any]) -> list[str]:
    kind = rendered["kind"]
    trimmed = {k: v for k, v in rendered.items() if (kind, k) not in UNCOMPARED}
    return differences(trimmed, live, f"{kind}/{rendered['metadata']['name']}")
