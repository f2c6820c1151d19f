"""The shapes of the ids the platform assigns, with no dependency: the config's validation
(an id given to adopt) and the platform providers (an id the platform returns, checked where
it arrives, in the engine's provider process) judge an id by the same patterns."""

from __future__ import annotations

import re

TUNNEL_ID = r"^tnl_[A-Za-z0-9]{4,64}$"
ENVIRONMENT_ID = r"^env_[A-Za-z0-9]{4,64}$"
# Any other object's id: it becomes a path segment of the next API call, a label or a value.
OBJECT_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
_BY_KIND = {"tunnel": TUNNEL_ID, "environment": ENVIRONMENT_ID}


def id_problem(kind: str, value: object) -> str | None:
    """Why `value` is no usable id of a `kind` object, or None."""
    pattern = _BY_KIND.get(kind, OBJECT_ID)
    if isinstance(value, str) and re.fullmatch(pattern, value):
        return None
    return f"it does not match {pattern}"
