"""The reference MCP server runtime: the perimeter's contract, read and enforced in one place.

Handlers import `Runtime` and `ToolCall` from `servers.runtime.app`; this package stays free of
heavy imports so the program (infra) can read the contract's names from `contract`.
"""
