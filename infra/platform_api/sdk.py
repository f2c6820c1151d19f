"""The `anthropic` SDK, imported when first used rather than when these modules load.

Importing it takes about a second, and the offline commands (render, check, audit)
only register these resources, never call the platform. Modules here write
`from infra.platform_api.sdk import anthropic` and use it as the module itself.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _ImportedOnFirstUse:
    def __getattr__(self, name: str) -> Any:
        module: ModuleType = importlib.import_module("anthropic")
        return getattr(module, name)


if TYPE_CHECKING:
    import anthropic as anthropic
else:
    anthropic = _ImportedOnFirstUse()
