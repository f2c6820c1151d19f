"""Tool passwords and SCRAM salts derived from a server's key: distinct, stable, rotatable."""

from __future__ import annotations

import pytest

from infra.pure.database.derived import KEY_LENGTH, SALT_LENGTH, scram_salt, tool_password

KEY = bytes(range(KEY_LENGTH))
OTHER_KEY = bytes(range(1, KEY_LENGTH + 1))


def test_a_password_is_stable_and_long() -> None:
    password = tool_password(KEY, "mcp_tickets_get_ticket", 0)
    assert password == tool_password(KEY, "mcp_tickets_get_ticket", 0)
    assert len(password) == 64 and int(password, 16) >= 0


def test_each_role_epoch_and_key_gets_its_own_password() -> None:
    passwords = {
        tool_password(key, role, epoch)
        for key in (KEY, OTHER_KEY)
        for role in ("mcp_tickets_get_ticket", "mcp_tickets_list_tickets")
        for epoch in (0, 1)
    }
    assert len(passwords) == 8


def test_the_salt_follows_the_password() -> None:
    first = scram_salt(KEY, "mcp_a", "one password")
    assert len(first) == SALT_LENGTH
    assert first == scram_salt(KEY, "mcp_a", "one password")
    assert first != scram_salt(KEY, "mcp_a", "another password")
    assert first != scram_salt(KEY, "mcp_b", "one password")
    assert first != scram_salt(OTHER_KEY, "mcp_a", "one password")


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        tool_password(b"short", "mcp_a", 0)
