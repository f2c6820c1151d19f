"""SCRAM-SHA-256 verifiers: the RFC's numbers, and a real server accepting the password."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from infra.pure.database.scram import scram_sha256_verifier
from tests.database.conftest import Server


def _parts(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    mechanism, iterations_salt, keys = verifier.split("$")
    assert mechanism == "SCRAM-SHA-256"
    iterations, salt = iterations_salt.split(":")
    stored, server = keys.split(":")
    return int(iterations), *(base64.b64decode(x) for x in (salt, stored, server))  # type: ignore[return-value]


def test_matches_the_rfc_7677_exchange() -> None:
    """The server signature of RFC 7677's example follows from the verifier's ServerKey,
    and the client's proof from the password checks out against its StoredKey."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_sha256_verifier("pencil", salt, 4096)
    _, _, stored_key, server_key = _parts(verifier)
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        f"r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    ).encode()
    signature = hmac.digest(server_key, auth_message, "sha256")
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.digest(stored_key, auth_message, "sha256")
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_same_salt_same_verifier_and_salt_matters() -> None:
    salt = bytes(range(16))
    first = scram_sha256_verifier("correct horse", salt)
    assert scram_sha256_verifier("correct horse", salt) == first
    assert scram_sha256_verifier("correct horse", bytes(16)) != first
    assert scram_sha256_verifier("correct horsf", salt) != first
    assert first.startswith("SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$")
    assert _parts(scram_sha256_verifier("x", salt, 10000))[0] == 10000


def test_saslprep_maps_like_the_server() -> None:
    salt = b"saltsaltsaltsalt"
    assert scram_sha256_verifier("\ufb01x", salt) == scram_sha256_verifier("fix", salt)  # NFKC
    assert scram_sha256_verifier("a\u00adb", salt) == scram_sha256_verifier(
        "ab", salt
    )  # to nothing
    assert scram_sha256_verifier("a\u00a0b", salt) == scram_sha256_verifier("a b", salt)  # space
    assert scram_sha256_verifier("e\u0301", salt) == scram_sha256_verifier("\u00e9", salt)


@pytest.mark.parametrize(
    ("password", "salt", "iterations"),
    [("", b"salt", 4096), ("pw", b"", 4096), ("pw", b"salt", 0)],
)
def test_unusable_inputs_are_refused(password: str, salt: bytes, iterations: int) -> None:
    with pytest.raises(ValueError):
        scram_sha256_verifier(password, salt, iterations)


LOGIN_PASSWORDS = [
    "Vq3-plain_ASCII.password",
    "p\u00e4ssw\u00f6rd",  # Latin-1 letters
    "e\u0301t\u00e9",  # decomposed and composed forms
    "\ufb01x-ligature",  # NFKC changes it
    "soft\u00adhyphen",  # mapped to nothing
    "non\u00a0breaking",  # mapped to a space
    "\u0627\u0628\u062a",  # right-to-left only: valid
    "\u0627abc",  # bidi violation: the server falls back to the raw bytes
    "\ue000private",  # private use: raw bytes too
]


@pytest.mark.postgres
def test_a_real_server_accepts_the_password_of_each_verifier(pg: Server) -> None:
    pg.reset()
    pg.superuser("CREATE ROLE scram_probe LOGIN")
    for i, password in enumerate(LOGIN_PASSWORDS):
        verifier = scram_sha256_verifier(password, hashlib.sha256(bytes([i])).digest()[:16])
        pg.superuser(f"ALTER ROLE scram_probe PASSWORD '{verifier}'")
        stored = pg.superuser("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'")
        assert stored.rows == [verifier], "the server re-hashed the verifier as a plain password"
        ok = pg.connect("scram_probe", password, "SELECT current_user", db="postgres")
        assert ok.rows == ["scram_probe"], (password, ok.stderr)
        wrong = pg.connect("scram_probe", password + "x", "SELECT 1", db="postgres")
        assert not wrong.ok
        assert "password authentication failed" in wrong.stderr
