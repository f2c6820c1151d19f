"""Installs are reproducible: one lock, the policy pack pinned from it, the workflow using both."""

from __future__ import annotations

import platform
import re
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

from infra.offline.audit.pr import MARKER

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(path: Path) -> dict[str, str]:
    return {_norm(name): version for name, version in PIN.findall(path.read_text())}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_locked_package_is_hashed() -> None:
    text = (REPO / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) > 20
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_direct_dependencies_are_locked_at_their_pyproject_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    locked = pins(REPO / "requirements.lock")
    for requirement in declared:
        name, _, version = requirement.partition("==")
        assert locked.get(_norm(name)) == version, requirement


def test_the_policy_pack_is_pinned_from_the_same_lock() -> None:
    pack, locked = pins(REPO / "policies" / "requirements.txt"), pins(REPO / "requirements.lock")
    assert {"pulumi", "pulumi-policy", "pyyaml", "pglast"} <= pack.keys()
    assert {name: locked.get(name) for name in pack} == pack


def test_the_python_range_admits_this_interpreter_and_the_linters_target_its_floor() -> None:
    """ruff and mypy check against the oldest Python the package admits, so syntax or stdlib
    newer than that fails lint, not a user's install."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    admitted = SpecifierSet(pyproject["project"]["requires-python"])
    assert platform.python_version() in admitted
    (floor,) = [s.version for s in admitted if s.operator == ">="]
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + floor.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == floor


def test_setup_installs_from_the_lock_with_hashes() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in setup
    assert "pip install -q --no-deps -e ." in setup


def _steps(job: str) -> list[dict]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "policies.yml").read_text())
    return workflow["jobs"][job]["steps"]


def test_the_workflow_uploads_the_checks_sarif() -> None:
    steps = _steps("check")
    run = next(s["run"] for s in steps if "run" in s and "--format sarif" in s["run"])
    upload = next(
        s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif")
    )
    assert '> "check-$STACK.sarif"' in run
    assert upload["with"]["sarif_file"] == "check-${{ matrix.stack }}.sarif"


def test_the_workflow_edits_the_comment_it_finds_by_the_audits_marker() -> None:
    steps = _steps("audit")
    run = next(s["run"] for s in steps if "run" in s and "--format pr" in s["run"])
    assert '--diff "$BASE"' in run
    script = next(s for s in steps if s.get("uses", "").startswith("actions/github-script"))
    body = script["with"]["script"]
    assert "const marker = `" + MARKER.format(label="${process.env.STACK}") + "`;" in body
    assert "updateComment" in body and "createComment" in body
