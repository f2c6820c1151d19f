"""The credential matrix: readers and how they read, what each Secret grants, and its flags."""

from __future__ import annotations

import copy
import json

from infra.offline.audit import audit_manifests, render_json, render_markdown
from infra.offline.audit.credentials import parse_grants_annotation, role_sql_grants
from infra.pure import naming
from tests.audit.fixtures.perimeter import NS, environment
from tests.audit.helpers import by_name, flag_codes

SECRET = f"Secret/{NS}"


def _cred(audit, name):
    return next(c for c in audit.credentials.credentials if c.name == name)


def test_every_secret_of_the_program_shape_has_exactly_one_reader() -> None:
    audit = audit_manifests(environment(3), policies=False)
    assert audit.credentials.credentials
    for c in audit.credentials.credentials:
        assert len(c.reader_workloads) == 1, c.ref
    assert not audit.credentials.flags


def test_what_each_secret_grants() -> None:
    audit = audit_manifests(environment(1), policies=False)
    role = _cred(audit, "mcp-server-tickets-db-read")
    assert role.role == "mcp_tickets_read"
    assert role.privileges == [
        "SELECT on tickets.items (id, name)",
        "rows where tenant_id = the session's tenant",
    ]
    token = _cred(audit, "mcp-server-tickets-platform-token")
    assert token.mcp_server_url == "https://tickets.mcp.example.com/mcp"
    assert "bound to https://tickets.mcp.example.com/mcp" in token.grants
    kinds = {c.name: c.kind for c in audit.credentials.credentials}
    assert kinds["mcp-tunnel-token"] == naming.CREDENTIAL_TUNNEL_TOKEN
    assert kinds["sandbox-runner-environment-key"] == naming.CREDENTIAL_ENVIRONMENT_KEY
    assert "admin" in _cred(audit, "role-provisioner-support-admin").grants


def test_how_each_reader_reads() -> None:
    manifests = environment(1)
    tunnel = by_name(manifests, "Deployment", "mcp-tunnel")
    pod = tunnel["spec"]["template"]["spec"]
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "extra"}, "prefix": "X_"}]
    pod["volumes"].append(
        {"name": "p", "projected": {"sources": [{"secret": {"name": "projected"}}]}}
    )
    pod["imagePullSecrets"] = [{"name": "pull"}]
    for name in ("extra", "projected", "pull"):
        manifests.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}}
        )
    audit = audit_manifests(manifests, policies=False)
    how = {c.name: [(r.how, r.detail) for r in c.readers] for c in audit.credentials.credentials}
    assert how["mcp-tunnel-token"] == [("env", "main: TUNNEL_TOKEN ← key password")]
    assert how["mcp-tunnel-tls"] == [("volume", "volume v0 at main:/etc/s0")]
    assert how["extra"] == [("envFrom", "main: every key (prefix X_)")]
    assert how["projected"] == [("volume", "volume p at not mounted")]
    assert how["pull"] == [("imagePullSecrets", "image pull")]
    # Secrets with no credential label: nobody can say what they grant.
    assert "secret-unlabelled" in flag_codes(audit, f"{SECRET}/extra")


def test_a_shared_secret_and_an_unread_one_are_flagged() -> None:
    manifests = environment(2)
    inventory = by_name(manifests, "Deployment", "mcp-server-inventory")
    env = inventory["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append(
        {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "mcp-tunnel-token", "key": "t"}}}
    )
    manifests = [
        m
        for m in manifests
        if m["metadata"]["name"] != "sandbox-runner" or m["kind"] != "Deployment"
    ]
    audit = audit_manifests(manifests, policies=False)
    assert "secret-single-reader" in flag_codes(audit, f"{SECRET}/mcp-tunnel-token")
    assert "reader-mismatch" in flag_codes(audit, f"{SECRET}/mcp-tunnel-token")
    assert flag_codes(audit, f"{SECRET}/sandbox-runner-environment-key") == {"secret-unread"}


def test_the_admin_credential_outside_the_provisioner_is_flagged() -> None:
    manifests = environment(1)
    sandbox = by_name(manifests, "Deployment", "sandbox-runner")
    sandbox["spec"]["template"]["spec"]["volumes"] = [
        {"name": "admin", "secret": {"secretName": "role-provisioner-support-admin"}}
    ]
    audit = audit_manifests(manifests, policies=False)
    assert "database-admin-only-provisioner" in flag_codes(
        audit, f"{SECRET}/role-provisioner-support-admin"
    )


def test_a_read_of_a_secret_the_bundle_does_not_declare_is_flagged() -> None:
    manifests = environment(1)
    sandbox = by_name(manifests, "Deployment", "sandbox-runner")
    sandbox["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"secretRef": {"name": "cloud-root-credentials"}}
    ]
    audit = audit_manifests(manifests, policies=False)
    assert "secret-undeclared" in flag_codes(audit, f"Deployment/{NS}/sandbox-runner")
    assert audit.credentials.undeclared[0][0] == f"{SECRET}/cloud-root-credentials"


def test_grants_annotation_is_checked_against_the_role_sql() -> None:
    manifests = environment(1)
    sql_map = next(m for m in manifests if m["kind"] == "ConfigMap")
    sql_map["data"]["roles.sql"] += "\nGRANT DELETE ON tickets.queue TO mcp_tickets_write;"
    audit = audit_manifests(manifests, policies=False)
    flag = next(f for f in audit.flags if f.code == "grants-mismatch")
    assert flag.subject == f"{SECRET}/mcp-server-tickets-db-write"
    assert "also grants DELETE on tickets.queue" in flag.message


def test_role_sql_grants_read_tables_columns_and_whole_schemas() -> None:
    sql = """
    GRANT USAGE ON SCHEMA support TO "mcp_a";
    GRANT SELECT (sku, name), UPDATE ON TABLE "inventory"."items" TO mcp_a, mcp_b;
    GRANT SELECT ON ALL TABLES IN SCHEMA support TO mcp_c;
    GRANT mcp_a TO mcp_c;
    """
    assert role_sql_grants(sql) == {
        "mcp_a": {("SELECT", "inventory.items"), ("UPDATE", "inventory.items")},
        "mcp_b": {("SELECT", "inventory.items"), ("UPDATE", "inventory.items")},
        "mcp_c": {("SELECT", "support.*")},
    }
    assert parse_grants_annotation(
        "SELECT on inventory.items (sku, name); INSERT, UPDATE on x.q; rows where t = 1"
    ) == {("SELECT", "inventory.items"), ("INSERT", "x.q"), ("UPDATE", "x.q")}


def test_no_secret_value_reaches_any_report() -> None:
    manifests = environment(1)
    token = by_name(manifests, "Secret", "mcp-tunnel-token")
    token["data"] = {"token": "c2VjcmV0LWRhdGEtdmFsdWU="}
    token["stringData"] = {"token": "SECRET-STRING-DATA"}
    token["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = (
        json.dumps({"stringData": {"token": "SECRET-LAST-APPLIED"}})
    )
    original = copy.deepcopy(token)
    audit = audit_manifests(manifests)
    for text in (render_markdown(audit), render_json(audit)):
        for value in ("c2VjcmV0LWRhdGEtdmFsdWU=", "SECRET-STRING-DATA", "SECRET-LAST-APPLIED"):
            assert value not in text
    assert token == original  # the caller's manifests are not modified
