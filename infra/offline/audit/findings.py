"""A flagged finding: something a reviewer must look at before the environment goes live.

A problem a pack rule covers is flagged under that rule's id, and only where the pack did not
run or did not report it: one problem, one finding, one name."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WARNING = "warning"
INFO = "info"


@dataclass(frozen=True, order=True)
class Flag:
    code: str
    subject: str
    message: str
    severity: str = WARNING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def not_reported_by(flags: list[Flag], rule_ids: set[str]) -> list[Flag]:
    """The flags whose problem the pack's findings (`rule_ids`, the rules that fired) did not
    already report."""
    return [f for f in flags if f.code not in rule_ids]
