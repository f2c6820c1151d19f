"""The cached tools the tier runs are the build script's own: the cheap artefacts rebuilt
from scratch equal the cached ones, an edited stage list is a stale entry, and the control
plane refuses to start when its stages do not make pods run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.e2e.harness.control_plane import ControlPlane
from tests.e2e.harness.tools import Tools
from tests.tool_cache.recipes import GENERAL_STAGES, SCRIPT, run, script_with_stages


def test_stage_files_and_kwok_config_rebuilt_from_scratch_equal_the_cached_ones(
    tools: Tools, tmp_path: Path
) -> None:
    built = run(SCRIPT, "kwok-stages", cache=tmp_path / "cache")
    assert built.returncode == 0, built.stderr
    fresh = Path(built.stdout.split()[1])
    cached = tools.kwok_config.parent
    assert fresh.parent.name == cached.parent.name  # the same recipe digest
    assert sorted(p.name for p in fresh.iterdir()) == sorted(p.name for p in cached.iterdir())
    for path in fresh.iterdir():
        assert path.read_bytes() == (cached / path.name).read_bytes(), path.name


def test_the_cache_the_tier_runs_on_verifies_and_an_edited_stage_list_is_stale(
    tools: Tools, tmp_path: Path
) -> None:
    cache = tools.kwok_config.parents[2]
    assert run(SCRIPT, "--verify", "control-plane", cache=cache).returncode == 0
    edited = script_with_stages(tmp_path, GENERAL_STAGES)
    stale = run(edited, "--verify", "control-plane", cache=cache)
    assert stale.returncode == 1
    flagged = [line.split()[:2] for line in stale.stdout.splitlines() if not line.startswith(" ")]
    assert flagged == [
        ["ok", "kubernetes"],
        ["ok", "etcd"],
        ["ok", "kwok"],
        ["STALE", "kwok-stages:"],
    ]


def test_the_control_plane_stops_at_once_when_the_stages_do_not_make_pods_run(
    tools: Tools, tmp_path: Path
) -> None:
    built = run(script_with_stages(tmp_path, GENERAL_STAGES), "kwok-stages", cache=tmp_path / "c")
    assert built.returncode == 0, built.stderr
    old_config = Path(built.stdout.split()[1]) / "kwok.yaml"
    plane = ControlPlane(dataclasses.replace(tools, kwok_config=old_config))
    try:
        with pytest.raises(RuntimeError) as refused:
            plane.start()
    finally:
        plane.stop()
    message = str(refused.value)
    assert "kwok's stages did not make pods run" in message
    assert "canary pod was Pending" in message
    assert str(old_config) in message
    assert "pod-ready, pod-complete, pod-delete" in message
