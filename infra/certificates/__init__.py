"""The CA and the serving certificates of TLS between the tunnel's proxy and each MCP server.

Dynamic resources over the `cryptography` library: the keys are made inside the
engine, kept as Pulumi secrets in the state, and never leave it except as the
Kubernetes Secret of the one server that serves with them.
"""
