"""A tool the SDK sees under another tool's definition (name and schema), so a wrapper (the
guard's limits, the tool host's forwarding) is invisible to the agent."""

from __future__ import annotations

from anthropic.lib.environments import BetaAnyRunnableTool
from anthropic.lib.tools import BetaAsyncBuiltinFunctionTool
from anthropic.types.beta import BetaToolUnionParam


class FacadeTool(BetaAsyncBuiltinFunctionTool):
    """Subclasses implement `call` (and `aclose` where the wrapped tool needs closing)."""

    def __init__(self, definition: BetaAnyRunnableTool) -> None:
        self._definition = definition

    def to_dict(self) -> BetaToolUnionParam:
        return self._definition.to_dict()

    @property
    def name(self) -> str:
        return self._definition.name
