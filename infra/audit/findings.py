"""A flagged finding: something a reviewer must look at before the environment goes live."""

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
