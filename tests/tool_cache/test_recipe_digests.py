"""Each cached tool is keyed by a digest of its whole recipe: an edit to the build script
changes the key of exactly the tools it touches, and --verify names every tool whose entry
is missing. Only digests here; tests/e2e/test_tool_cache.py builds against the real cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.tool_cache.recipes import GENERAL_STAGES, SCRIPT, digests, run, script_with_stages

CONTROL_PLANE = {"kubernetes", "etcd", "kwok", "kwok-stages"}


def test_every_control_plane_tool_has_a_digest_that_is_stable() -> None:
    first, second = digests(SCRIPT, "control-plane"), digests(SCRIPT, "control-plane")
    assert set(first) == CONTROL_PLANE
    assert first == second
    assert all(len(d) == 16 and int(d, 16) >= 0 for d in first.values())


def test_changing_the_stage_list_changes_only_the_stage_entry(tmp_path: Path) -> None:
    edited = script_with_stages(tmp_path, GENERAL_STAGES)
    before, after = digests(SCRIPT, "control-plane"), digests(edited, "control-plane")
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"kwok-stages"}


def test_a_version_bump_changes_that_tool_alone(tmp_path: Path) -> None:
    copy = tmp_path / "build-tools.sh"
    copy.write_text(SCRIPT.read_text().replace("ETCD_VERSION=v3.6.16", "ETCD_VERSION=v3.6.17"))
    before, after = digests(SCRIPT, "control-plane"), digests(copy, "control-plane")
    assert {name for name in before if before[name] != after[name]} == {"etcd"}


def test_verify_names_every_missing_tool_and_fails(tmp_path: Path) -> None:
    done = run(SCRIPT, "--verify", "control-plane", cache=tmp_path / "empty")
    assert done.returncode == 1
    for name in CONTROL_PLANE:
        assert f"MISSING {name} " in done.stdout


def test_stage_files_build_from_scratch_and_verify(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    built = run(SCRIPT, "kwok-stages", cache=cache)
    assert built.returncode == 0, built.stderr
    name, directory, _version = built.stdout.split()
    assert name == "kwok-stages"
    config = Path(directory) / "kwok.yaml"
    documents = list(yaml.safe_load_all(config.read_text()))
    assert [d["metadata"]["name"] for d in documents] == [
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-ready",
        "pod-complete",
        "pod-delete",
    ]
    assert "pod/fast/pod-ready" in (Path(directory).parent / ".recipe").read_text()
    verified = run(SCRIPT, "--verify", "kwok-stages", cache=cache)
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.startswith("ok      kwok-stages")


def test_an_edited_recipe_finds_the_old_entry_stale_and_says_what_differs(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    assert run(SCRIPT, "kwok-stages", cache=cache).returncode == 0
    edited = script_with_stages(tmp_path, GENERAL_STAGES)
    stale = run(edited, "--verify", "kwok-stages", cache=cache)
    assert stale.returncode == 1
    assert stale.stdout.startswith("STALE   kwok-stages")
    assert "pod/general/pod-ready" in stale.stdout
    rebuilt = run(edited, "kwok-stages", cache=cache)
    assert rebuilt.returncode == 0
    assert "removing the entry of an older recipe" in rebuilt.stderr
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [
        Path(rebuilt.stdout.split()[1]).parent.name
    ]


def test_an_image_is_keyed_by_every_repo_file_it_copies(tmp_path: Path) -> None:
    """The MCP server and sandbox images copy whole directories: an edit to any file under
    them, or a new one, re-keys that image alone; a test run's bytecode does not."""
    repo = SCRIPT.parents[2]
    copy = tmp_path / "scripts" / "e2e" / "build-tools.sh"
    copy.parent.mkdir(parents=True)
    copy.write_text(SCRIPT.read_text())
    for tree in ("images", "servers", "sandbox"):
        shutil.copytree(repo / tree, tmp_path / tree, ignore=shutil.ignore_patterns("__pycache__"))
    base = digests(copy, "images")
    assert base == digests(SCRIPT, "images")

    def changed() -> set[str]:
        now = digests(copy, "images")
        return {name for name in base if base[name] != now[name]}

    contract = tmp_path / "servers" / "runtime" / "contract.py"
    contract.write_text(contract.read_text() + "# edited\n")
    assert changed() == {"image-mcp-exports"}
    (tmp_path / "sandbox" / "extra.py").write_text("")
    assert changed() == {"image-mcp-exports", "image-sandbox-worker"}
    contract.write_text((repo / "servers" / "runtime" / "contract.py").read_text())
    (tmp_path / "sandbox" / "extra.py").unlink()
    (tmp_path / "sandbox" / "__pycache__").mkdir(exist_ok=True)
    (tmp_path / "sandbox" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    assert changed() == set()
