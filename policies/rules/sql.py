"""Role SQL read with PostgreSQL's own parser (pglast, on libpg_query).

A psql script is split the way psql splits it (quotes, dollar quotes and comments
respected; backslash commands recognised), every statement is parsed, DO blocks and
function bodies are parsed as PL/pgSQL, and the resulting trees are judged. Nothing
is matched by regular expression, so a keyword in a comment or a string literal is
never a statement.

Dynamic SQL cannot be judged and is refused: EXECUTE of a computed string, `\\gexec`
over computed text, psql variables interpolated as SQL, dblink. Two forms are static in
disguise and are read instead: `\\gexec` / EXECUTE over constant strings (each string is
parsed as SQL), and EXECUTE of `format()` whose constant template can only take access
away (REVOKE, DROP POLICY, DROP ROLE, ALTER ROLE ... NOLOGIN, ALTER ROLE ... RESET) -- the
shape of a reconcile loop over the catalog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

FORBIDDEN_ATTRIBUTES = {
    "superuser": "SUPERUSER",
    "createrole": "CREATEROLE",
    "createdb": "CREATEDB",
    "isreplication": "REPLICATION",
    "bypassrls": "BYPASSRLS",
}
_WRITE_PRIVILEGES = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE", "ALL"})
# psql's own variables, interpolated as numbers: never SQL text someone put there.
_PSQL_NUMERIC_VARIABLES = frozenset({"VERSION_NUM", "SERVER_VERSION_NUM", "LASTOID", "ROW_COUNT"})
# psql commands whose effect the script's text does not show.
_OPAQUE_COMMANDS = frozenset(
    {"i", "ir", "include", "include_relative", "!", "o", "out", "c", "connect"}
)
# Functions that run SQL text they are given.
_SQL_RUNNERS = frozenset(
    {"dblink", "dblink_exec", "dblink_send_query", "query_to_xml", "query_to_xml_and_xmlschema"}
)
_FORMAT_PLACEHOLDER = re.compile(r"%(?:\d+\$)?(-?\d*)([sIL%])")
_PLACEHOLDER_TEXT = {"s": "ap_x", "I": "ap_x", "L": "'ap_x'", "%": "%"}
_REDUCING = frozenset({"DropStmt", "DropRoleStmt", "AlterRoleSetStmt"})


class SqlUnreadable(ValueError):
    """Text that is not a psql script PostgreSQL's parser accepts."""


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


@dataclass
class Analysis:
    """What a script does to roles: created roles, grants, and what breaks least privilege."""

    created: list[str] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    memberships: list[tuple[str, str, bool, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None


# --- splitting a psql script ---------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    text: str
    gexec: bool


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_PSQL_VARIABLE = re.compile(r":(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_PSQL_COMMAND = re.compile(r"\\([A-Za-z_!]+)")
# Characters that never start a comment, quote, variable, command or statement end: copied
# in one run instead of one at a time (the scripts of 50 servers are long).
_PLAIN_RUN = re.compile(r"[^-/'\"$:;\\]+")


def _dollar_tag(text: str, i: int) -> str | None:
    match = _DOLLAR_TAG.match(text, i)
    return match.group(0) if match else None


def split_psql(script: str) -> tuple[list[_Chunk], list[str]]:
    """Statements as psql sends them, and problems with the script's psql commands."""
    chunks: list[_Chunk] = []
    problems: list[str] = []
    out: list[str] = []
    i, n = 0, len(script)

    def flush(gexec: bool = False) -> None:
        text = "".join(out).strip()
        out.clear()
        if text:
            chunks.append(_Chunk(text, gexec))

    while i < n:
        run = _PLAIN_RUN.match(script, i)
        if run:
            out.append(run.group())
            i = run.end()
            continue
        c = script[i]
        if c == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "/" and script.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if script.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif script.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(" ")
            i = j
            continue
        if c in "'\"":
            escaped = (
                c == "'"
                and i > 0
                and script[i - 1] in "eE"
                and (i < 2 or not (script[i - 2].isalnum() or script[i - 2] == "_"))
            )
            j = i + 1
            while j < n:
                if escaped and script[j] == "\\":
                    j += 2
                    continue
                if script[j] == c:
                    if j + 1 < n and script[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(script[i : j + 1])
            i = j + 1
            continue
        if c == "$":
            tag = _dollar_tag(script, i)
            if tag and not (i > 0 and (script[i - 1].isalnum() or script[i - 1] == "_")):
                end = script.find(tag, i + len(tag))
                end = n if end < 0 else end + len(tag)
                out.append(script[i:end])
                i = end
                continue
        if c == ":":
            if script.startswith("::", i):
                out.append("::")
                i += 2
                continue
            match = _PSQL_VARIABLE.match(script, i)
            if match and not (i > 0 and script[i - 1] == ":"):
                quote, name = match.group(1), match.group(2)
                if quote == "'":
                    out.append("'ap_psql_value'")
                elif quote == '"':
                    out.append('"ap_psql_name"')
                elif name in _PSQL_NUMERIC_VARIABLES:
                    out.append("0")
                else:
                    problems.append(
                        f"dynamic SQL: psql variable :{name} is interpolated as SQL text"
                    )
                    out.append("0")
                i = match.end()
                continue
        if c == ";":
            out.append(";")
            flush()
            i += 1
            continue
        if c == "\\":
            match = _PSQL_COMMAND.match(script, i)
            command = match.group(1) if match else ""
            end = script.find("\n", i)
            end = n if end < 0 else end
            rest = script[i + len(command) + 1 : end]
            if command in ("g", "gx", "gexec", "gset", "gdesc", "crosstabview", "watch"):
                flush(gexec=command == "gexec")
                i += len(command) + 1
                continue
            if command in _OPAQUE_COMMANDS or "`" in rest:
                problems.append(f"psql command \\{command} runs something the script does not show")
            i = end
            continue
        out.append(c)
        i += 1
    flush()
    return chunks, problems


# --- reading parse trees ---------------------------------------------------------------------


def _parse(text: str) -> list[dict[str, Any]]:
    from pglast import parser  # a C extension: imported where SQL is actually read

    try:
        raw_json = parser.parse_sql_json(text)
    except parser.ParseError as exc:
        raise SqlUnreadable(str(exc)) from None
    tree = json.loads(raw_json)
    # A function is named in the tree by its identifier as the parser decoded it (quotes and
    # U&"" escapes resolved), which JSON writes verbatim: when no name of a SQL runner occurs
    # as a JSON string, no call to one can be in these statements and their trees need no walk.
    calls_runner = any(f'"{name}"' in raw_json for name in _SQL_RUNNERS)
    found = []
    for raw in tree.get("stmts", []):
        stmt = raw.get("stmt", {})
        start = raw.get("stmt_location", 0)
        length = raw.get("stmt_len") or len(text) - start
        found.append(
            {
                "node": stmt,
                "text": " ".join(text[start : start + length].split()),
                "calls_runner": calls_runner,
            }
        )
    return found


def _plpgsql(body: str) -> dict[str, Any]:
    from pglast import parser

    tag = "$ap_body$"
    while tag in body:
        tag = tag[:-1] + "x$"
    source = f"CREATE FUNCTION ap_check() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"
    try:
        return json.loads(parser.parse_plpgsql_json(source))[0]
    except parser.ParseError as exc:
        raise SqlUnreadable(f"PL/pgSQL: {exc}") from None


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """(node type, body) of every node in a JSON parse tree, depth first in document order.

    Iterative: nested `yield from` costs the tree's depth on every node, and a role script
    of 50 servers has close to a million of them."""
    pending: list[Iterator[tuple[str | None, Any]]] = [_children(node)]
    while pending:
        step = next(pending[-1], None)
        if step is None:
            pending.pop()
            continue
        key, value = step
        if isinstance(value, dict):
            if key is not None and key[:1].isupper():
                yield key, value
            pending.append(_children(value))
        elif isinstance(value, list):
            pending.append(_children(value))


def _children(node: Any) -> Iterator[tuple[str | None, Any]]:
    if isinstance(node, dict):
        return iter(node.items())
    if isinstance(node, list):
        return ((None, item) for item in node)
    return iter(())


def _role(spec: dict[str, Any]) -> str:
    spec = spec.get("RoleSpec", spec)
    kind = spec.get("roletype")
    if kind == "ROLESPEC_CSTRING":
        return str(spec.get("rolename"))
    return {
        "ROLESPEC_PUBLIC": "public",
        "ROLESPEC_CURRENT_USER": "current_user",
        "ROLESPEC_SESSION_USER": "session_user",
        "ROLESPEC_CURRENT_ROLE": "current_role",
    }.get(str(kind), "?")


def _strings(node: Any) -> list[str]:
    return [str(body.get("sval")) for kind, body in _walk(node) if kind == "String"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _target(grant: dict[str, Any]) -> str:
    kind = str(grant.get("objtype", "OBJECT_TABLE")).removeprefix("OBJECT_").replace("_", " ")
    objects = grant.get("objects") or []
    if grant.get("targtype") == "ACL_TARGET_ALL_IN_SCHEMA":
        return f"ALL {kind}S IN SCHEMA " + ", ".join(_quote(s) for s in _strings(objects))
    if grant.get("targtype") == "ACL_TARGET_DEFAULTS":
        return f"DEFAULT {kind}S"
    names = []
    for item in objects:
        if "RangeVar" in item:
            rv = item["RangeVar"]
            parts = [rv.get("schemaname"), rv.get("relname")]
            names.append(".".join(_quote(p) for p in parts if p))
        else:
            names.append(".".join(_quote(p) for p in _strings(item)))
    return f"{kind} " + ", ".join(names)


def _option(options: list[Any], name: str) -> Any:
    for item in options or []:
        element = item.get("DefElem", {})
        if element.get("defname") == name:
            return element.get("arg")
    return None


def _true(value: Any) -> bool:
    return isinstance(value, dict) and bool(value.get("Boolean", {}).get("boolval"))


class _Reader:
    def __init__(self) -> None:
        self.result = Analysis()

    def problem(self, text: str) -> None:
        if text not in self.result.problems:
            self.result.problems.append(text)

    def script(self, text: str) -> None:
        chunks, problems = split_psql(text)
        for problem in problems:
            self.problem(problem)
        self.chunks(chunks)

    def chunks(self, chunks: list[_Chunk]) -> None:
        for chunk in chunks:
            statements = _parse(chunk.text)
            for statement in statements:
                self.statement(statement["node"], statement["text"], statement["calls_runner"])
                if chunk.gexec:
                    self.gexec(statement["node"], statement["text"])

    def sql(self, text: str) -> None:
        for statement in _parse(text):
            self.statement(statement["node"], statement["text"], statement["calls_runner"])

    def gexec(self, node: dict[str, Any], text: str) -> None:
        """`\\gexec` runs every value the query returns as a statement."""
        select = node.get("SelectStmt")
        values = []
        stack = [select] if select else []
        while stack:
            current = stack.pop()
            for arm in ("larg", "rarg"):
                if current.get(arm):
                    stack.append(current[arm])
            values += [t.get("ResTarget", {}).get("val") for t in current.get("targetList") or []]
            for row in current.get("valuesLists") or []:
                values += row.get("List", {}).get("items", [])
        results = [r for v in values for r in _case_results(v)]
        constant = [r["A_Const"]["sval"]["sval"] for r in results if _constant_string(r)]
        narrow = [r for r in results if _narrow_format(r)]
        if not select or len(constant) + len(narrow) != len(results):
            self.problem(f"dynamic SQL: \\gexec runs computed text: {text[:120]}")
            return
        for value in constant:
            self.sql(value)

    def statement(self, node: dict[str, Any], text: str, calls_runner: bool = True) -> None:
        for kind, body in node.items():
            handler = getattr(self, f"on_{kind}", None)
            if handler is not None:
                handler(body, text)
        for kind, body in _walk(node) if calls_runner else ():
            name = (_strings(body.get("funcname")) or [""])[-1] if kind == "FuncCall" else ""
            if name in _SQL_RUNNERS:
                self.problem(f"dynamic SQL: {name}() runs SQL text")

    def _attributes(self, role: str, options: list[Any], text: str) -> None:
        for name, attribute in FORBIDDEN_ATTRIBUTES.items():
            if _true(_option(options, name)):
                self.problem(f"grants the role attribute {attribute} to {role}")
        for name, how in (("addroleto", "in"), ("rolemembers", "to"), ("adminmembers", "to")):
            value = _option(options, name)
            for member in _walk(value) if value else ():
                if member[0] == "RoleSpec":
                    other = _role(member[1])
                    member_of = (role, other) if how == "in" else (other, role)
                    self.result.memberships.append((*member_of, name == "adminmembers", text))

    def on_CreateRoleStmt(self, body: dict[str, Any], text: str) -> None:
        role = str(body.get("role"))
        self.result.created.append(role)
        self._attributes(role, body.get("options") or [], text)

    def on_AlterRoleStmt(self, body: dict[str, Any], text: str) -> None:
        role = _role(body.get("role", {}))
        if body.get("action", 1) == -1:
            return  # ALTER GROUP ... DROP USER
        self._attributes(role, body.get("options") or [], text)

    def on_GrantRoleStmt(self, body: dict[str, Any], text: str) -> None:
        if not body.get("is_grant"):
            return
        admin = _true(_option(body.get("opt") or [], "admin"))
        for granted in body.get("granted_roles") or []:
            name = str(granted.get("AccessPriv", {}).get("priv_name"))
            for grantee in body.get("grantee_roles") or []:
                self.result.memberships.append((_role(grantee), name, admin, text))

    def on_GrantStmt(self, body: dict[str, Any], text: str) -> None:
        if not body.get("is_grant"):
            return
        privileges = tuple(
            str(p.get("AccessPriv", {}).get("priv_name", "all")).upper()
            for p in body.get("privileges") or []
        ) or ("ALL",)
        grant = Grant(
            statement=text,
            privileges=privileges,
            target=_target(body),
            grantees=tuple(_role(g) for g in body.get("grantees") or []),
            with_option=bool(body.get("grant_option")),
        )
        self.result.grants.append(grant)
        if "ALL" in privileges:
            self.problem(f"grants ALL PRIVILEGES: {text[:120]}")
        if "public" in grant.grantees:
            self.problem(f"grants to PUBLIC: {text[:120]}")
        if grant.with_option:
            self.problem(f"lets the grantee pass the grant on: {text[:120]}")

    def on_AlterDefaultPrivilegesStmt(self, body: dict[str, Any], text: str) -> None:
        self.on_GrantStmt(body.get("action", {}), text)

    def on_DoStmt(self, body: dict[str, Any], text: str) -> None:
        args = body.get("args") or []
        language = _option(args, "language")
        if language and _strings(language) != ["plpgsql"]:
            self.problem(f"a DO block in {_strings(language)} cannot be analysed: {text[:80]}")
            return
        self.plpgsql(str(_strings(_option(args, "as"))[0]))

    def on_CreateFunctionStmt(self, body: dict[str, Any], text: str) -> None:
        options = body.get("options") or []
        language = (_strings(_option(options, "language")) or ["sql"])[0]
        source = _strings(_option(options, "as"))
        if body.get("sql_body"):
            self.statement(body["sql_body"], text)
        elif language == "plpgsql" and source:
            self.plpgsql(source[0])
        elif language == "sql" and source:
            self.sql(source[0])
        else:
            self.problem(f"a function in {language} cannot be analysed: {text[:80]}")

    def plpgsql(self, body: str) -> None:
        tree = _plpgsql(body)
        for kind, node in _walk(tree):
            if kind == "PLpgSQL_stmt_execsql":
                self.sql(str(node["sqlstmt"]["PLpgSQL_expr"]["query"]))
            elif kind == "PLpgSQL_stmt_dynexecute":
                self.dynamic(str(node["query"]["PLpgSQL_expr"]["query"]))
            elif kind in ("PLpgSQL_stmt_dynfors", "PLpgSQL_stmt_open") and node.get(
                "query" if kind == "PLpgSQL_stmt_dynfors" else "dynquery"
            ):
                self.problem("dynamic SQL: a loop or cursor over EXECUTEd text")

    def dynamic(self, expression: str) -> None:
        """EXECUTE <expression>: read when constant or a reduce-only format(); else refused."""
        (statement,) = _parse(f"SELECT {expression}")
        value = statement["node"]["SelectStmt"]["targetList"][0]["ResTarget"]["val"]
        if _constant_string(value):
            self.sql(value["A_Const"]["sval"]["sval"])
            return
        call = value.get("FuncCall", {})
        args = call.get("args") or []
        if _strings(call.get("funcname"))[-1:] == ["format"] and args and _constant_string(args[0]):
            template = args[0]["A_Const"]["sval"]["sval"]
            shape = _FORMAT_PLACEHOLDER.sub(lambda m: _PLACEHOLDER_TEXT[m.group(2)], template)
            try:
                parsed = _parse(shape)
            except SqlUnreadable:
                parsed = []
            if len(parsed) == 1 and _reduces_access(parsed[0]["node"]):
                return
        self.problem(f"dynamic SQL: EXECUTE {expression[:120]}")


def _case_results(value: Any) -> list[Any]:
    """The values a CASE can produce (its branches and its ELSE), or the value itself."""
    case = value.get("CaseExpr") if isinstance(value, dict) else None
    if not case:
        return [value]
    branches = [w.get("CaseWhen", {}).get("result") for w in case.get("args") or []]
    return [r for b in [*branches, case.get("defresult")] for r in _case_results(b)]


def _format_template(value: Any) -> dict[str, Any] | None:
    """The statement a `format()` call with a constant template builds, its placeholders filled."""
    call = value.get("FuncCall", {}) if isinstance(value, dict) else {}
    args = call.get("args") or []
    if _strings(call.get("funcname"))[-1:] != ["format"] or not args:
        return None
    if not _constant_string(args[0]):
        return None
    template = args[0]["A_Const"]["sval"]["sval"]
    shape = _FORMAT_PLACEHOLDER.sub(lambda m: _PLACEHOLDER_TEXT[m.group(2)], template)
    try:
        parsed = _parse(shape)
    except SqlUnreadable:
        return None
    return parsed[0]["node"] if len(parsed) == 1 else None


def _narrow_format(value: Any) -> bool:
    """A computed statement whose shape is fixed and grants nothing beyond its own table:
    USAGE on a sequence (what INSERT into a serial column needs), a row-level policy, or
    anything that only takes access away."""
    node = _format_template(value)
    if node is None:
        return False
    ((kind, body),) = node.items()
    if kind == "CreatePolicyStmt":
        return True
    if kind == "GrantStmt" and body.get("is_grant"):
        privileges = [
            p.get("AccessPriv", {}).get("priv_name") for p in body.get("privileges") or []
        ]
        return (
            body.get("objtype") == "OBJECT_SEQUENCE"
            and privileges == ["usage"]
            and not body.get("grant_option")
        )
    return _reduces_access(node)


def _constant_string(value: Any) -> bool:
    return isinstance(value, dict) and "sval" in value.get("A_Const", {})


def _reduces_access(node: dict[str, Any]) -> bool:
    """A statement that can only take access away (whatever names fill its placeholders)."""
    ((kind, body),) = node.items()
    if kind in _REDUCING:
        return kind != "AlterRoleSetStmt" or str(
            body.get("setstmt", {}).get("kind", "")
        ).startswith("VAR_RESET")
    if kind in ("GrantStmt", "GrantRoleStmt"):
        return not body.get("is_grant")
    if kind == "AlterRoleStmt":
        options = body.get("options") or []
        names = {o.get("DefElem", {}).get("defname") for o in options}
        raises = any(_true(o.get("DefElem", {}).get("arg")) for o in options)
        return names <= {"canlogin", "password", "validUntil", "connectionlimit"} and not raises
    return False


def _read(run: Callable[[_Reader], None]) -> Analysis:
    reader = _Reader()
    try:
        run(reader)
    except SqlUnreadable as exc:
        reader.result.error = f"is not SQL PostgreSQL can parse: {exc}"
    return reader.result


@lru_cache(maxsize=64)  # several rules read the same provisioning scripts in one run
def _analysed(script: str) -> Analysis:
    return _read(lambda reader: reader.script(script))


# Scripts analysed ahead of the rules (analyse_on), by text.
_AHEAD: dict[str, Analysis] = {}


def analyse(script: str) -> Analysis:
    ahead = _AHEAD.get(script)
    return ahead if ahead is not None else _analysed(script)


def analyse_chunks(chunks: list[_Chunk]) -> Analysis:
    """The analysis of a run of a script's statements (for another process: it pickles)."""
    return _read(lambda reader: reader.chunks(chunks))


Submit = Callable[[Callable[[list[_Chunk]], Analysis], list[_Chunk]], "Future[Analysis]"]


def analyse_on(script: str, submit: Submit) -> Callable[[], Analysis]:
    """Start `analyse` on other processes (`submit` runs a function on one), half the
    statements each: a role script of 50 servers takes a third of a second to read. The
    returned function waits for both, puts them together as one reading would have left
    them, and keeps the result for `analyse`."""
    chunks, problems = split_psql(script)
    half = len(chunks) // 2
    parts = [submit(analyse_chunks, chunks[:half]), submit(analyse_chunks, chunks[half:])]

    def finish() -> Analysis:
        combined = Analysis(problems=list(dict.fromkeys(problems)))
        for part in (future.result() for future in parts):
            combined.created += part.created
            combined.grants += part.grants
            combined.memberships += part.memberships
            combined.problems += [p for p in part.problems if p not in combined.problems]
            if part.error is not None:  # one reading stops at the first unreadable statement
                combined.error = part.error
                break
        _AHEAD[script] = combined
        return combined

    return finish


def created_roles(sql: str) -> tuple[str, ...]:
    return tuple(analyse(sql).created)


def grants(sql: str) -> tuple[Grant, ...]:
    """GRANT statements on objects and role memberships (REVOKE is not one)."""
    analysis = analyse(sql)
    memberships = [
        Grant(text, (granted,), None, (member,), admin)
        for member, granted, admin, text in analysis.memberships
    ]
    return (*analysis.grants, *memberships)


def unquote(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier.lower()


PRIVILEGED_PREFIX = "pg_"
ADMIN_ALIASES = frozenset({"current_user", "session_user", "current_role"})


def problems(sql: str) -> list[str]:
    """Every way the script breaks least privilege, or why it cannot be judged."""
    analysis = analyse(sql)
    if analysis.error:
        return [analysis.error]
    found = list(analysis.problems)
    created = set(analysis.created)
    for member, granted, admin, text in analysis.memberships:
        if granted.startswith(PRIVILEGED_PREFIX):
            found.append(f"makes {member} a member of the predefined role {granted}: {text[:120]}")
        elif granted in ADMIN_ALIASES:
            found.append(f"makes {member} a member of the admin role ({granted}): {text[:120]}")
        elif member in created:
            found.append(f"makes the tool role {member} a member of {granted}: {text[:120]}")
        elif granted in created:
            found.append(f"shares the tool role {granted} with {member}: {text[:120]}")
        if admin:
            found.append(f"lets {member} pass membership in {granted} on: {text[:120]}")
    return list(dict.fromkeys(found))
