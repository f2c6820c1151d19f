"""Credentials by value, not only by name: a server's env values, args and config files are
refused when they hold one, however the field is named, and names are judged by words. The
same cases run through the pack's `no-plaintext-credential` on the rendered objects, so the
config and the check cannot disagree. The value never appears in an error."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.pure.config import ConfigError, parse_perimeter
from policies.rules import evaluate
from tests.conftest import raw_settings
from tests.policies import perimeter_fixtures as fx

BILLING = 3  # dev's HTTP-only server

# (case, an env value, what the refusal says it is). Each value is made here, so no real
# credential shape sits in the repo as a literal.
VALUES = [
    ("a password in a URL", "postgres://app:" + "hunter2x" + "@10.20.0.15/db", "a password inside a URL"),
    ("a password in an https URL", "https://bot:" + "pw" * 6 + "@git.example.com/repo", "a password inside a URL"),
    ("an Anthropic key", "sk-ant-api03-" + "Ab3" * 10, "an Anthropic API key"),
    ("a GitHub token", "ghp_" + "A1b2" * 9, "a GitHub token"),
    ("a fine-grained GitHub token", "github_pat_" + "11AB" * 8, "a GitHub token"),
    ("an AWS key id", "AKIA" + "IOSFODNN7EXAMPLE", "an AWS access key id"),
    ("an AWS secret line", "aws_secret_access_key = " + "w" * 40, "an AWS secret key"),
    ("a Slack bot token", "xoxb-" + "1234567890-" * 3, "a Slack token"),
    ("a Slack webhook", "https://hooks.slack.com/services/" + "T000/B000/XXXX", "a Slack webhook"),
    ("a bearer header", "Authorization: Bearer " + "9f2c8a7d6e5b4c3a2b1c", "a bearer token"),
    ("a JWT", "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "sig", "a JSON web token"),
    ("a PEM key", "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3Blbg==\n", "a PEM private key"),
]  # fmt: skip

# Names: refused as credentials, and accepted as not.
CREDENTIAL_NAMES = ["DB_PASS", "API_SECRET", "STRIPE_KEY", "GITHUB_TOKEN", "SIGNING_KEY", "APIKEY"]
PLAIN_NAMES = ["MAX_TOKENS", "TOKENIZER", "PASSWORD_FILE", "SECRET_NAME", "CACHE_KEY", "LOG_LEVEL"]

PLAIN_VALUES = [
    "https://billing.internal.example.com:8443/v1",
    "Bearer authentication is required by the billing API",
    "postgres://10.20.0.15:5432/billing",
    "1024",
]


def _parse(change: Any) -> None:
    raw = raw_settings("dev")
    server = raw["mcp_servers"][BILLING]
    assert server["name"] == "billing"
    change(server)
    parse_perimeter(raw, "Pulumi.dev.yaml")


def _refused(change: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        _parse(change)
    assert "nothing was deployed or written" in str(caught.value)
    return dict(caught.value.problems)


@pytest.mark.parametrize(("value", "what"), [c[1:] for c in VALUES], ids=[c[0] for c in VALUES])
def test_a_credential_value_is_refused_wherever_it_is_put(value: str, what: str) -> None:
    field = f"mcp_servers[{BILLING}]"
    for change, where in (
        (lambda s: s.setdefault("env", {}).update(UPSTREAM=value), f"{field}.env.UPSTREAM"),
        (lambda s: s.__setitem__("args", ["--upstream", value]), f"{field}.args[1]"),
        (
            lambda s: s.setdefault("config_files", {}).update({"app.ini": f"x = {value}\n"}),
            f"{field}.config_files.app.ini",
        ),
    ):
        problems = _refused(change)
        assert where in problems, problems
        assert what in problems[where]
        assert value not in str(problems) and value.split("\n")[0] not in str(problems)


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_a_credential_name_is_refused_as_an_env_name(name: str) -> None:
    problems = _refused(lambda s: s.setdefault("env", {}).update({name: "anything"}))
    assert "names a credential" in problems[f"mcp_servers[{BILLING}].env.{name}"]


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_a_name_that_only_contains_a_credential_word_is_accepted(name: str) -> None:
    _parse(lambda s: s.setdefault("env", {}).update({name: "1024"}))


@pytest.mark.parametrize("value", PLAIN_VALUES)
def test_plain_values_are_accepted(value: str) -> None:
    _parse(lambda s: s.setdefault("env", {}).update(UPSTREAM=value))
    _parse(lambda s: s.setdefault("config_files", {}).update({"app.yaml": f"upstream: {value}\n"}))


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[db]\nhost = x\npassword = hunter2\n", 3),
        ('{"name": "billing",\n "apiKey": "abc123"}\n', 2),
        ("export DB_PASS=hunter2\n", 1),
        ("client:\n  clientSecret: s3\n", 2),
    ],
)
def test_a_credential_named_key_with_a_literal_in_a_config_file_is_refused(
    text: str, line: int
) -> None:
    problems = _refused(lambda s: s.setdefault("config_files", {}).update({"app.conf": text}))
    message = problems[f"mcp_servers[{BILLING}].config_files.app.conf"]
    assert f"(line {line})" in message and "hunter2" not in message and "abc123" not in message


def test_a_config_file_may_point_at_a_credential_file_or_variable() -> None:
    text = "password_file: /run/secrets/db\ntoken: ${BILLING_TOKEN}\nmax_tokens: 1024\nsecret:\n"
    _parse(lambda s: s.setdefault("config_files", {}).update({"app.yaml": text}))


@pytest.mark.parametrize(
    "args", [["--db-password", "hunter2"], ["--db-password=hunter2"], ["--api-key", "k1"]]
)
def test_a_credential_flag_with_a_literal_is_refused(args: list[str]) -> None:
    problems = _refused(lambda s: s.__setitem__("args", args))
    assert "holds a literal value for --" in problems[f"mcp_servers[{BILLING}].args"]
    assert "hunter2" not in str(problems)


def test_a_flag_naming_a_credential_file_is_accepted() -> None:
    _parse(lambda s: s.__setitem__("args", ["--token-file", "/run/x", "--max-tokens", "5"]))


# --- the same cases, judged by the pack on rendered objects ---------------------------------


def _pack_ids(manifests: list[fx.Manifest]) -> set[str]:
    return {v.rule_id for v in evaluate(fx.resources(manifests)) if v.mandatory}


def _with_env(name: str, value: str) -> list[fx.Manifest]:
    manifests = copy.deepcopy(fx.environment())
    container = fx.first_container(fx.find(manifests, "Deployment", "mcp-server-tickets"))
    container.setdefault("env", []).append({"name": name, "value": value})
    return manifests


def test_the_clean_environment_has_no_plaintext_credential() -> None:
    assert "no-plaintext-credential" not in _pack_ids(fx.environment())


@pytest.mark.parametrize(("value", "what"), [c[1:] for c in VALUES], ids=[c[0] for c in VALUES])
def test_the_pack_refuses_the_same_values(value: str, what: str) -> None:
    violations = [
        v
        for v in evaluate(fx.resources(_with_env("UPSTREAM", value)))
        if v.rule_id == "no-plaintext-credential"
    ]
    assert [v.resource for v in violations] == [f"Deployment/{fx.NS}/mcp-server-tickets"]
    assert what in violations[0].message and value.split("\n")[0] not in violations[0].message


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_the_pack_refuses_a_literal_under_a_credential_name(name: str) -> None:
    assert "no-plaintext-credential" in _pack_ids(_with_env(name, "hunter2"))


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_the_pack_accepts_the_same_plain_names(name: str) -> None:
    assert "no-plaintext-credential" not in _pack_ids(_with_env(name, "1024"))


def test_the_pack_refuses_a_credential_in_a_configmap_and_in_args() -> None:
    manifests = copy.deepcopy(fx.environment())
    manifests.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": fx.meta("billing-settings"),
            "data": {"app.ini": "[db]\npassword = hunter2\n"},
        }
    )
    container = fx.first_container(fx.find(manifests, "Deployment", "mcp-server-tickets"))
    container["args"] = ["--db-password", "hunter2"]
    found = {
        (v.resource, v.message)
        for v in evaluate(fx.resources(manifests))
        if v.rule_id == "no-plaintext-credential"
    }
    assert {r for r, _ in found} == {
        f"ConfigMap/{fx.NS}/billing-settings",
        f"Deployment/{fx.NS}/mcp-server-tickets",
    }
    assert not any("hunter2" in m for _, m in found)
