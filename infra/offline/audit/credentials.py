"""The credential matrix: every Secret, who reads it and how, and what it grants.

What a Secret grants is read from the labels and annotations the program puts
on it (infra/pure/naming.py), cross-checked against the role SQL the provisioning
Job applies, so a grants annotation that drifted from the SQL is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from infra.contract.names import ROLE_SQL_KEY
from infra.offline.audit.findings import INFO, Flag
from infra.offline.audit.inventory import Inventory, SecretObject, object_ref
from infra.pure import naming
from policies.rules.sql import grants as sql_grants, unquote

Grant = tuple[str, str]  # (privilege, schema.table)


@dataclass(frozen=True)
class Reader:
    workload: str
    how: str
    detail: str


@dataclass
class Credential:
    ref: str
    namespace: str
    name: str
    kind: str | None  # value of the credential label
    grants: str
    role: str | None = None
    privileges: list[str] = field(default_factory=list)
    mcp_server_url: str | None = None
    readers: list[Reader] = field(default_factory=list)

    @property
    def reader_workloads(self) -> list[str]:
        return sorted({r.workload for r in self.readers})


@dataclass
class CredentialMatrix:
    credentials: list[Credential]
    undeclared: list[tuple[str, Reader]]  # (Secret ref, reader) of Secrets the bundle lacks
    sql_grants: dict[str, set[Grant]] | None  # None when the bundle ships no role SQL
    flags: list[Flag]


_OTHER_OBJECTS = re.compile(
    r"^(SCHEMA|SEQUENCE|DATABASE|FUNCTION|PROCEDURE|ROUTINE|LANGUAGE|TYPE|DOMAIN|FOREIGN|"
    r"LARGE|TABLESPACE|PARAMETER|ALL\s+(SEQUENCES|FUNCTIONS|PROCEDURES|ROUTINES))\b",
    re.IGNORECASE,
)
_ALL_TABLES = re.compile(r"^ALL\s+TABLES\s+IN\s+SCHEMA\s+", re.IGNORECASE)


def _privilege(text: str) -> str:
    word = text.strip().upper()
    return "ALL" if word.startswith("ALL") else word


def _tables(target: str) -> list[str]:
    """Tables a GRANT's ON clause names; `schema.*` for every table of a schema."""
    if _OTHER_OBJECTS.match(target):
        return []
    every = _ALL_TABLES.match(target)
    names = target[every.end() :] if every else re.sub(r"^TABLE\s+", "", target, flags=re.I)
    tables = [".".join(unquote(p) for p in n.strip().split(".")) for n in names.split(",")]
    return [f"{t}.*" for t in tables] if every else tables


def role_sql_grants(sql: str) -> dict[str, set[Grant]]:
    """Table privileges per role in the provisioning SQL (the policy pack's SQL reading)."""
    found: dict[str, set[Grant]] = {}
    for g in sql_grants(sql):
        if g.target is None:
            continue
        pairs = {(_privilege(p), t) for p in g.privileges for t in _tables(g.target)}
        for role in g.grantees:
            found.setdefault(role, set()).update(pairs)
    return found


_ANNOTATED_GRANT = re.compile(
    r"^(?P<privs>[A-Za-z ,]+?)\s+on\s+(?:table\s+)?(?P<table>[\w.\"]+)\s*(?:\(.*\))?$",
    re.IGNORECASE,
)


def parse_grants_annotation(text: str) -> set[Grant]:
    """`SELECT on support.tickets; SELECT on inventory.items (sku, name)` → {(SELECT, table)}.

    Items that are not table privileges (a tenant row condition) are not grants.
    """
    found: set[Grant] = set()
    for item in (i.strip() for i in text.split(";")):
        m = _ANNOTATED_GRANT.match(item)
        if m:
            table = m["table"].replace('"', "")
            found.update((_privilege(p), table) for p in m["privs"].split(",") if p.strip())
    return found


_FIXED_GRANTS = {
    naming.CREDENTIAL_TUNNEL_TOKEN: "tunnel token: connects the tunnel to the platform's tunnel edge",
    naming.CREDENTIAL_TUNNEL_TLS: "certificate and key of the tunnel proxy's inner TLS layer",
    naming.CREDENTIAL_ENVIRONMENT_KEY: "environment service key: polls the sandbox work queue",
    naming.CREDENTIAL_DATABASE_ADMIN: "database admin credential: creates and alters roles",
    naming.CREDENTIAL_ROLE_VERIFIERS: "SCRAM verifiers of the per-tool database roles",
    naming.CREDENTIAL_SERVING_TLS: "the MCP server's serving certificate and key (proxy to server TLS)",
}


def _credential(secret: SecretObject) -> Credential:
    """What a Secret grants, in words, from the program's label and annotations."""
    kind = secret.labels.get(naming.LABEL_CREDENTIAL)
    role = secret.annotations.get(naming.ANNOTATION_DATABASE_ROLE)
    text = secret.annotations.get(naming.ANNOTATION_GRANTS, "")
    privileges = [g.strip() for g in text.split(";") if g.strip()]
    url = secret.annotations.get(naming.ANNOTATION_MCP_SERVER_URL)
    if kind is None:
        grants = f"unknown: no {naming.LABEL_CREDENTIAL} label"
    elif kind == naming.CREDENTIAL_DATABASE_ROLE:
        grants = f"database role {role or '?'}: {'; '.join(privileges) or 'grants not annotated'}"
    elif kind == naming.CREDENTIAL_PLATFORM_TOKEN:
        grants = f"platform credential bound to {url or '? (no URL annotated)'}"
    elif kind == naming.CREDENTIAL_BACKEND:
        backend = secret.annotations.get(naming.ANNOTATION_BACKEND)
        grants = f"credential of backend {backend or '? (no backend annotated)'}, as a file"
    else:
        grants = _FIXED_GRANTS.get(kind, f"unknown credential kind {kind!r}")
    return Credential(
        secret.ref, secret.namespace, secret.name, kind, grants, role, privileges, url
    )


def build_credentials(inv: Inventory) -> CredentialMatrix:
    credentials = {key: _credential(secret) for key, secret in sorted(inv.secrets.items())}
    undeclared: list[tuple[str, Reader]] = []
    for w in inv.workloads.values():
        for use in w.secret_uses:
            reader = Reader(w.ref, use.how, use.detail)
            cred = credentials.get((w.namespace, use.secret))
            if cred is None:
                undeclared.append((object_ref("Secret", w.namespace, use.secret), reader))
            else:
                cred.readers.append(reader)
    applied: dict[str, set[Grant]] | None = None
    for _, cm in inv.config_maps:
        labels = (cm.get("metadata") or {}).get("labels") or {}
        if str(labels.get(naming.LABEL_ROLE_SQL)).lower() == "true":
            applied = applied if applied is not None else {}
            sql = str((cm.get("data") or {}).get(ROLE_SQL_KEY, ""))
            for role, found in role_sql_grants(sql).items():
                applied.setdefault(role, set()).update(found)
    matrix = CredentialMatrix(list(credentials.values()), undeclared, applied, [])
    matrix.flags = sorted(_credential_flags(matrix, inv))
    return matrix


def _credential_flags(matrix: CredentialMatrix, inv: Inventory) -> Iterator[Flag]:
    for secret, r in matrix.undeclared:
        yield Flag(
            "secret-undeclared",
            r.workload,
            f"reads {secret}, which the bundle does not declare ({r.how}; {r.detail})",
        )
    for c in matrix.credentials:
        readers = c.reader_workloads
        if not readers:
            yield Flag("secret-unread", c.ref, "no workload reads it", INFO)
        elif len(readers) > 1:
            yield Flag(
                "secret-single-reader",
                c.ref,
                f"read by {len(readers)} workloads: {', '.join(readers)}",
            )
        if c.kind is None or c.grants.startswith("unknown"):
            yield Flag("secret-unlabelled", c.ref, f"what it grants is unknown ({c.grants})")
        if c.kind == naming.CREDENTIAL_DATABASE_ADMIN:
            for ref in readers:
                if inv.workloads[ref].component != naming.COMPONENT_PROVISIONER:
                    yield Flag(
                        "database-admin-only-provisioner",
                        c.ref,
                        f"the database admin credential is read by {ref}, "
                        "which is not a role-provisioning Job",
                    )
        if c.kind == naming.CREDENTIAL_DATABASE_ROLE:
            yield from _role_flags(c, matrix.sql_grants)
        declared = inv.secrets[(c.namespace, c.name)].annotations.get(naming.ANNOTATION_READER)
        if declared and readers and not all(_is(declared, inv, r) for r in readers):
            yield Flag(
                "reader-mismatch",
                c.ref,
                f"annotated for {declared} but read by {', '.join(readers)}",
            )


def _is(declared: str, inv: Inventory, ref: str) -> bool:
    """A reader annotation may name the workload by ref, Kind/name, name or instance label."""
    w = inv.workloads[ref]
    return declared in {ref, w.short, w.name, w.labels.get(naming.LABEL_INSTANCE)}


def _role_flags(c: Credential, sql: dict[str, set[Grant]] | None) -> Iterator[Flag]:
    """The grants annotation is what reviewers read; the SQL is what the database gets."""
    if not c.role or not c.privileges:
        yield Flag(
            "annotation-missing",
            c.ref,
            f"a database-role Secret needs {naming.ANNOTATION_DATABASE_ROLE} and "
            f"{naming.ANNOTATION_GRANTS}",
        )
        return
    if sql is None:
        return
    annotated = parse_grants_annotation("; ".join(c.privileges))
    applied = sql.get(c.role, set())
    if applied == annotated:
        return
    words = []
    if applied - annotated:
        words.append("the SQL also grants " + _grant_words(applied - annotated))
    if annotated - applied:
        words.append("the SQL does not grant " + _grant_words(annotated - applied))
    yield Flag("grants-mismatch", c.ref, f"role {c.role}: {'; '.join(words)}")


def _grant_words(grants: set[Grant]) -> str:
    return ", ".join(f"{p} on {t}" for p, t in sorted(grants))
