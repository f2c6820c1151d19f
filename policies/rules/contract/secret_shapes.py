"""What a credential looks like, by its name or by its value: one definition for the config's
validation (env, args, config files) and the pack's `no-plaintext-credential`.

Names are judged by words (split on `_`, `-`, `.` and case changes), never by substrings:
`DB_PASS` and `API_SECRET` name credentials; `MAX_TOKENS`, `TOKENIZER` and `PASSWORD_FILE`
(a path to one, the way the bundle mounts them) do not. Values are judged by shape: a
password inside a URL, the well-known token formats, PEM private keys, and in a file's text
a credential-named key given a literal value. What matched is described, never repeated.
"""

from __future__ import annotations

import itertools
import re

# A word that on its own makes a name a credential's.
CREDENTIAL_WORDS = frozenset(
    {
        "PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY",
        "CREDENTIAL", "CREDENTIALS", "CREDS", "PRIVATEKEY", "AUTHTOKEN", "BEARER",
    }
)  # fmt: skip
# Two words that together do: `API_KEY`, `ACCESS_KEY`, `SIGNING_KEY` ...
CREDENTIAL_PAIRS = frozenset(
    {
        ("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"),
        ("SIGNING", "KEY"), ("ENCRYPTION", "KEY"), ("MASTER", "KEY"), ("AUTH", "KEY"),
        ("CLIENT", "KEY"), ("SESSION", "KEY"), ("LICENSE", "KEY"), ("WEBHOOK", "KEY"),
    }
)  # fmt: skip
# `..._KEY` names a key (STRIPE_KEY, OPENAI_KEY) unless it is one of data's own keys.
DATA_KEY_WORDS = frozenset(
    {
        "CACHE", "SORT", "PARTITION", "PRIMARY", "FOREIGN", "IDEMPOTENCY", "ROUTING", "HASH",
        "LOOKUP", "SHARD", "GROUP", "OBJECT", "RANGE", "INDEX", "DEDUP", "LOCK", "QUEUE",
        "MAP", "TENANT", "TRACE", "METRIC", "LABEL", "SETTING", "CONFIG", "PUBLIC",
    }
)  # fmt: skip
# A last word that makes the name about a credential, not the credential itself: where it
# is, what it is called, how long or how many.
DESCRIBING_WORDS = frozenset(
    {
        "FILE", "PATH", "DIR", "DIRECTORY", "NAME", "REF", "URL", "URI", "ENDPOINT", "TTL",
        "EXPIRY", "LENGTH", "LEN", "LIMIT", "COUNT", "MAX", "MIN", "SIZE", "HEADER", "TYPE",
        "FORMAT", "ALGORITHM", "ID", "MOUNT", "VERSION", "POLICY", "ROTATION",
    }
)  # fmt: skip

_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def name_words(name: str) -> list[str]:
    """`dbPassword` and `DB_PASSWORD` alike: ["DB", "PASSWORD"]."""
    return [w.upper() for w in _WORD_BREAK.split(name) if w]


def credential_name(name: str) -> bool:
    words = name_words(name)
    if not words or words[-1] in DESCRIBING_WORDS or words in (["PWD"], ["OLDPWD"]):
        return False  # PWD alone is the shell's working directory
    pairs = set(itertools.pairwise(words))
    if CREDENTIAL_WORDS.intersection(words) or CREDENTIAL_PAIRS & pairs:
        return True
    return words[-1] == "KEY" and len(words) > 1 and words[-2] not in DATA_KEY_WORDS


# (what it is, its shape): matched anywhere in a value. Written in the syntax Python's `re`
# and RE2 share (no lookaround), so the admission policy's CEL `matches()` uses these very
# patterns (policies/rules/admission.py).
TOKEN_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")),
    ("a password inside a URL", re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:[^/?#@\s]+@")),
    ("an Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{16,}")),
    ("an API secret key (sk-...)", re.compile(r"\bsk-(?:live-|proj-)?[A-Za-z0-9_-]{20,}")),
    ("a Stripe-style secret key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")),
    ("an AWS secret key", re.compile(r"(?i)\baws_secret_access_key\s*[:=]")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook", re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    # A digit in it: "Bearer authentication" is prose, "Bearer 9f2c..." a token.
    ("a bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z._~+/-]*[0-9][A-Za-z0-9._~+/-]*")),
)  # fmt: skip

# `password = x`, `"apiKey": "x"`, `token: x`, `export DB_PASS=x` in a file's text; a colon
# right after the key (YAML, JSON), so SQL's `PASSWORD :'variable'` is no assignment.
_ASSIGNMENT = re.compile(
    r"""^\s*[{\[,]?\s*(?:export\s+)?["']?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)["']?(?:\s*=|:(?!//))\s*"""
    r"""(?P<value>.*?)\s*,?\s*$"""
)
# A value that is no credential: empty, a reference to where one lives, a placeholder.
_NOT_A_VALUE = re.compile(
    r"""^(?:|["']{2}|~|null|none|nil|true|false|[{\[][}\]]?|[$%]\{?.*|<.*>|/\S*|file:\S*|\*+)$""",
    re.IGNORECASE,
)


def credential_in_value(value: str) -> str | None:
    """What credential `value` holds, or None."""
    for what, shape in TOKEN_SHAPES:
        if shape.search(value):
            return what
    return None


def _literal(value: str) -> bool:
    return bool(value.strip().strip("\"'")) and not _NOT_A_VALUE.match(value.strip())


def credential_in_env(name: str, value: str) -> str | None:
    """What an environment variable given `value` literally holds: a credential by its value,
    or any literal under a credential's name."""
    found = credential_in_value(value)
    if found is None and credential_name(name) and _literal(value):
        found = f"a literal value under the credential name {name!r}"
    return found


def credential_in_args(args: list[str]) -> tuple[int, str] | None:
    """(index, what) of the first argument holding a credential: by its value, as
    `--db-password=x`, or as `--db-password x`."""
    for index, arg in enumerate(args):
        found = credential_in_value(arg)
        flag, equals, value = arg.partition("=")
        if found is None and flag.startswith("-") and credential_name(flag.lstrip("-")):
            following = value if equals else (args[index + 1] if index + 1 < len(args) else "")
            if _literal(following) and not following.startswith("-"):
                found = f"a literal value for {flag}"
        if found:
            return index, found
    return None


def credential_in_text(text: str) -> str | None:
    """As `credential_in_value`, and a credential-named key given a literal value on a line of
    a file (ini, env, YAML, JSON, TOML)."""
    found = credential_in_value(text)
    if found:
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("#", ";", "//")):
            continue
        match = _ASSIGNMENT.match(line)
        if match and credential_name(match["key"]) and _literal(match["value"]):
            return f"a value for {match['key']!r} (line {number})"
    return None
