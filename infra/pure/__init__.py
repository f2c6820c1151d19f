"""Functions of the config, with no engine and no I/O: the config itself (read and
validated), the names adapted to its models, the NetworkPolicies, the agent definitions,
the per-tool role SQL and derived credentials, and the shapes of names and ids."""
