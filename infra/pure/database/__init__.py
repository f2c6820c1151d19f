"""Per-tool database roles: the SQL a provisioning Job applies, the SCRAM verifiers it
sets, and how the Job runs psql. Pure Python, so the SQL can be rendered, reviewed
(`python -m infra db-sql`) and tested against a real server without a cluster."""
