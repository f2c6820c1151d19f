"""MCP servers that run inside the perimeter, and the runtime they share."""
