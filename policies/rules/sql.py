"""Just enough PostgreSQL reading to judge role SQL: attributes, grants, created roles.

Not a parser: comments are dropped and statements split on `;`, which also walks
into DO blocks, where idempotent role creation usually lives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_LINE_COMMENT = re.compile(r"--[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_IDENT = r'(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)'

FORBIDDEN_ATTRIBUTES = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")
# The attribute list of a CREATE/ALTER ROLE clause, also when it sits in a string that
# `\gexec` or EXECUTE runs: it ends at a `;`, a quote or a psql backslash command.
_ROLE_CLAUSE = re.compile(r"\b(?:CREATE|ALTER)\s+(?:ROLE|USER|GROUP)\s+[^;'\\]*", re.I)
_ATTRIBUTE = re.compile(
    r"(?<![A-Za-z0-9_$])(" + "|".join(FORBIDDEN_ATTRIBUTES) + r")(?![A-Za-z0-9_$])", re.I
)
_GRANT_ALL = re.compile(r"\bGRANT\s+ALL\b", re.I)
_CREATE_ROLE = re.compile(
    r"\bCREATE\s+(?:ROLE|USER)\s+(?:IF\s+NOT\s+EXISTS\s+)?(" + _IDENT + ")", re.I
)
_GRANT = re.compile(
    r"\bGRANT\s+(?P<what>.+?)(?:\s+ON\s+(?P<on>.+?))?\s+TO\s+(?P<to>.+?)"
    r"(?P<tail>\s+WITH\s+.*|\s+GRANTED\s+BY\s+.*)?$",
    re.I | re.S,
)
_GRANT_WORD = re.compile(r"\bGRANT\b", re.I)
_REVOKE_BEFORE = re.compile(r"\bREVOKE\s*$", re.I)
_WITH_OPTION = re.compile(r"\bWITH\s+(GRANT|ADMIN)\s+(OPTION|TRUE)\b")
_PARENS = re.compile(r"\([^)]*\)")
_WRITE_PRIVILEGES = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE", "ALL"})


@dataclass(frozen=True)
class Grant:
    statement: str
    privileges: tuple[str, ...]
    target: str | None  # None for a role membership grant
    grantees: tuple[str, ...]
    with_option: bool

    @property
    def writes(self) -> bool:
        return self.target is not None and bool(_WRITE_PRIVILEGES & set(self.privileges))


@lru_cache(maxsize=16)
def strip_comments(sql: str) -> str:
    return _LINE_COMMENT.sub(" ", _BLOCK_COMMENT.sub(" ", sql))


@lru_cache(maxsize=16)
def statements(sql: str) -> tuple[str, ...]:
    return tuple(" ".join(s.split()) for s in strip_comments(sql).split(";") if s.strip())


@lru_cache(maxsize=16)
def _upper(sql: str) -> tuple[tuple[str, str], ...]:
    """(statement, upper-cased) pairs: a cheap substring test skips most regex work."""
    return tuple((s, s.upper()) for s in statements(sql))


def unquote(identifier: str) -> str:
    return identifier[1:-1] if identifier.startswith('"') else identifier.lower()


@lru_cache(maxsize=16)
def created_roles(sql: str) -> tuple[str, ...]:
    return tuple(
        unquote(m.group(1))
        for s, upper in _upper(sql)
        if "CREATE" in upper
        for m in _CREATE_ROLE.finditer(s)
    )


@lru_cache(maxsize=16)
def forbidden_attributes(sql: str) -> tuple[str, ...]:
    """SUPERUSER & co. given in a CREATE/ALTER ROLE clause (NOSUPERUSER and friends do not count;
    the words elsewhere, say in a query that checks for them, are not grants)."""
    found: set[str] = set()
    for s, upper in _upper(sql):
        if any(word in upper for word in FORBIDDEN_ATTRIBUTES):
            for clause in _ROLE_CLAUSE.finditer(s):
                found.update(m.group(1).upper() for m in _ATTRIBUTE.finditer(clause.group(0)))
    return tuple(sorted(found))


@lru_cache(maxsize=16)
def grants_all(sql: str) -> tuple[str, ...]:
    """Statements granting ALL [PRIVILEGES]; REVOKE ALL is fine and not counted."""
    return tuple(s for s, upper in _upper(sql) if "GRANT" in upper and _GRANT_ALL.search(s))


@lru_cache(maxsize=16)
def grants(sql: str) -> tuple[Grant, ...]:
    """GRANT statements (privileges or memberships); REVOKE GRANT OPTION FOR is not one."""
    found = []
    for statement, upper in _upper(sql):
        if "GRANT" not in upper:
            continue
        for start in _GRANT_WORD.finditer(statement):
            if _REVOKE_BEFORE.search(statement[: start.start()]):
                continue
            text = statement[start.start() :]
            match = _GRANT.match(text)
            if not match:
                continue
            what = _PARENS.sub(" ", match.group("what"))
            grantees = tuple(
                unquote(g.strip().removeprefix("GROUP ").strip())
                for g in match.group("to").split(",")
                if g.strip()
            )
            tail = (match.group("tail") or "").upper()
            found.append(
                Grant(
                    statement=text,
                    privileges=tuple(p.split()[0].upper() for p in what.split(",") if p.strip()),
                    target=match.group("on"),
                    grantees=grantees,
                    with_option=bool(_WITH_OPTION.search(tail)),
                )
            )
            break
    return tuple(found)
