"""SCRAM-SHA-256 verifiers computed client-side, the way PostgreSQL stores them.

The provisioning Job sets each role's password as a verifier, so the database
(and its statement log) never sees a tool's clear-text password. The verifier
is a pure function of (password, salt, iterations): with a salt derived from a key kept
in state (infra/pure/database/derived.py), Pulumi sees no diff on every run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import stringprep
import unicodedata

DEFAULT_ITERATIONS = 4096  # PostgreSQL's scram_iterations default
_KEY_LENGTH = 32


def scram_sha256_verifier(password: str, salt: bytes, iterations: int = DEFAULT_ITERATIONS) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802, RFC 7677).

    The password is normalised with SASLprep first, exactly as the server does on
    login, so a non-ASCII password verifies too.
    """
    if not password:
        raise ValueError("an empty password cannot be used: PostgreSQL refuses to log in with it")
    if not salt:
        raise ValueError("the salt must not be empty")
    if iterations < 1:
        raise ValueError(f"iterations must be positive, not {iterations}")
    salted = hashlib.pbkdf2_hmac("sha256", _prepared(password), salt, iterations, _KEY_LENGTH)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _prepared(password: str) -> bytes:
    """The bytes PostgreSQL hashes: SASLprep(password), or the raw UTF-8 when SASLprep
    rejects it (the server falls back the same way, see src/common/saslprep.c)."""
    raw = password.encode("utf-8")
    if password.isascii():  # the server passes pure ASCII through untouched
        return raw
    prepared = _saslprep(password)
    return raw if prepared is None else prepared.encode("utf-8")


_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,  # unassigned code points are prohibited in stored strings
)


def _saslprep(text: str) -> str | None:
    """RFC 4013 for stored strings as PostgreSQL applies it; None where it rejects the input.

    Like the server, the prohibited-output and bidi checks look at the mapped string
    before normalisation: a verifier must match what the server computes, not the RFC.
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    if not mapped:
        return None
    if any(check(ch) for ch in mapped for check in _PROHIBITED):
        return None
    if any(stringprep.in_table_d1(ch) for ch in mapped):  # RFC 3454 section 6
        if any(stringprep.in_table_d2(ch) for ch in mapped):
            return None
        if not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return None
    return unicodedata.normalize("NFKC", mapped)
