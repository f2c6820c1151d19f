"""`audit --diff <git-rev>`: what a pull request changes, against its base, per environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this tree as its own repository, committed once: the PR's base."""
    root = tmp_path_factory.mktemp("repo") / "repo"
    files = _git(REPO, "ls-files", "-co", "--exclude-standard").splitlines()
    for name in files:
        source = REPO / name
        if source.is_file() and not source.is_symlink() and not name.startswith("tests/"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    return root


def audit(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    helm = str(REPO / ".tools" / "bin")
    env = {**os.environ, "PATH": helm + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "infra", "audit", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_changed_database_address_shows_with_its_name_and_both_ranges(clone: Path) -> None:
    stack = clone / "Pulumi.dev.yaml"
    original = stack.read_text()
    stack.write_text(original.replace("10.20.0.15", "10.20.0.16"))
    try:
        proc = audit(clone, "--diff", "HEAD", "--stack", "dev", "--format", "json")
        status = _git(clone, "status", "--porcelain")
    finally:
        stack.write_text(original)
    assert proc.returncode == 0, proc.stderr
    (diff,) = json.loads(proc.stdout)
    assert diff["a"] == "dev@HEAD"
    found = {(c["subject"], c["what"]): (c["a"], c["b"]) for c in diff["changes"]}
    key = ("Deployment/mcp-server-tickets", "database support (10.20.0.15/32)")
    assert found[key] == ("TCP/5432", "—")
    key = ("Deployment/mcp-server-tickets", "database support (10.20.0.16/32)")
    assert found[key] == ("—", "TCP/5432")
    # the working tree holds only the edit the test made; nothing the audit wrote
    assert status.splitlines() == [" M Pulumi.dev.yaml"]
    assert _git(clone, "worktree", "list").count("\n") == 1


def test_an_unchanged_tree_has_no_difference_in_any_stack(clone: Path) -> None:
    proc = audit(clone, "--diff", "HEAD")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("No difference in reachability or credentials.") == 3
    assert "## Boundary diff: prod: HEAD → working tree" in proc.stdout


def test_an_unknown_revision_is_a_clear_error(clone: Path) -> None:
    proc = audit(clone, "--diff", "no-such-rev")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --diff no-such-rev: not a commit of this repository")
    assert "Traceback" not in proc.stderr


def test_two_environments_hide_their_own_database_addresses() -> None:
    proc = audit(REPO, "--diff", "staging", "prod")
    assert proc.returncode == 0, proc.stderr
    assert "No difference in reachability or credentials." in proc.stdout
