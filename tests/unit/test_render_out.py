"""`render --out` never deletes or overwrites a file it did not write."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.offline.manifests import (
    MANIFESTS_DIR,
    PLATFORM_FILE,
    RENDER_MARKER,
    ManifestError,
    write_dir,
)
from tests.conftest import REPO_ROOT


def _tree(root: Path) -> dict[str, str]:
    """Every file under root (relative path -> sha256), to prove nothing changed."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _render(
    out: str | Path, cwd: Path = REPO_ROOT, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", "dev", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def _object(kind: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}}


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The repository's tracked files, where `render --out .` may do its worst."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    copy = tmp_path / "repo"
    for name in filter(None, files):
        source = REPO_ROOT / name.decode()
        if source.is_file():
            (copy / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name.decode())
    return copy


def test_render_into_the_repository_refuses_and_deletes_nothing(repo_copy: Path) -> None:
    before = _tree(repo_copy)
    proc = _render(".", repo_copy)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{repo_copy} is not empty and was not written by render" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _tree(repo_copy) == before
    assert sorted(os.listdir(repo_copy.parent)) == ["repo"], "a temporary folder was left behind"


def test_render_writes_a_new_folder_and_replaces_only_its_own(tmp_path: Path) -> None:
    out = tmp_path / "build" / "dev"
    first = _render(out)
    assert first.returncode == 0, first.stderr
    assert (out / RENDER_MARKER).is_file()
    rendered = _tree(out)
    assert len(rendered) > 20
    second = _render(out)
    assert second.returncode == 0, second.stderr
    assert _tree(out) == rendered, "rendering the same environment again must give the same files"
    assert sorted(os.listdir(out.parent)) == ["dev"]


def test_an_object_removed_from_the_program_disappears_from_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_dir([_object("ConfigMap", "a"), _object("ConfigMap", "b")], out)
    written = write_dir([_object("ConfigMap", "a")], out)
    assert sorted(os.listdir(out)) == [RENDER_MARKER, "configmap-a.yaml"]
    assert written == [out / "configmap-a.yaml"]


@pytest.mark.parametrize(
    "intruder",
    ["notes.txt", "configmap-c.yaml", ".hidden"],
    ids=["a user's file", "a YAML file render did not write", "a hidden file"],
)
def test_a_file_render_did_not_write_blocks_the_replacement(tmp_path: Path, intruder: str) -> None:
    out = tmp_path / "out"
    write_dir([_object("ConfigMap", "a")], out)
    (out / intruder).write_text("keep me\n")
    before = _tree(out)
    with pytest.raises(
        ManifestError, match=rf"{out} holds 1 file\(s\) render did not write \({intruder}\)"
    ):
        write_dir([_object("ConfigMap", "b")], out)
    assert _tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_an_empty_folder_is_used_and_a_file_is_never_replaced(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    write_dir([_object("ConfigMap", "a")], empty)
    assert (empty / "configmap-a.yaml").is_file()
    plain_file = tmp_path / "out.yaml"
    plain_file.write_text("mine\n")
    with pytest.raises(ManifestError, match="exists and is not a folder"):
        write_dir([_object("ConfigMap", "a")], plain_file)
    assert plain_file.read_text() == "mine\n"


def test_a_forged_or_broken_marker_does_not_open_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "Pulumi.yaml").write_text("name: x\n")
    (out / RENDER_MARKER).write_text("not json")
    with pytest.raises(ManifestError, match="is not a render marker"):
        write_dir([_object("ConfigMap", "a")], out)
    assert (out / "Pulumi.yaml").read_text() == "name: x\n"


def test_a_failed_render_leaves_the_previous_one_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_dir([_object("ConfigMap", "a")], out)
    before = _tree(out)
    with pytest.raises(ManifestError, match=r"two objects would be written to configmap-b\.yaml"):
        write_dir([_object("ConfigMap", "b"), _object("ConfigMap", "b")], out)
    assert _tree(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out"], "the temporary folder was not cleaned up"


def test_each_file_reads_kind_name_and_namespace_first(tmp_path: Path) -> None:
    """Whatever order the engine's round trip left the keys in, a reader sees what the object
    is at the top of its file."""
    manifest = {
        "spec": {"replicas": 1},
        "metadata": {"labels": {"a": "b"}, "namespace": "ns", "name": "web"},
        "kind": "Deployment",
        "apiVersion": "apps/v1",
    }
    (written,) = write_dir([manifest], tmp_path / "out")
    lines = written.read_text().splitlines()
    assert lines[:5] == [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        "  name: web",
        "  namespace: ns",
    ]


def test_the_render_is_a_folder_kubectl_applies_in_order(tmp_path: Path) -> None:
    """Issue 22 §11: the objects alone in manifests/, the platform plan beside them, and file
    names in an order the API server accepts: the namespace, its guards, the fences before
    any workload, every workload after its ServiceAccount."""
    out = tmp_path / "dev"
    proc = _render(out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == sorted([RENDER_MARKER, MANIFESTS_DIR, PLATFORM_FILE])
    names = sorted(os.listdir(out / MANIFESTS_DIR))
    kinds = [yaml.safe_load((out / MANIFESTS_DIR / n).read_text())["kind"] for n in names]
    assert kinds[0] == "Namespace" and kinds.count("Namespace") == 1
    workloads = {"Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob"}
    first_workload = min(i for i, k in enumerate(kinds) if k in workloads)
    for before in ("NetworkPolicy", "ServiceAccount", "Secret", "ValidatingAdmissionPolicy"):
        assert max(i for i, k in enumerate(kinds) if k == before) < first_workload, before
    assert all(n.endswith(".yaml") for n in names), "only manifests in the folder kubectl reads"


def test_a_file_slipped_into_the_manifests_folder_stops_the_next_render(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_dir([_object("ConfigMap", "a")], out, manifests_dir=MANIFESTS_DIR)
    (out / MANIFESTS_DIR / "extra.yaml").write_text("kind: ConfigMap\n")
    before = _tree(out)
    with pytest.raises(ManifestError, match=r"holds 1 file\(s\) render did not write"):
        write_dir([_object("ConfigMap", "b")], out, manifests_dir=MANIFESTS_DIR)
    assert _tree(out) == before
    written = write_dir([_object("ConfigMap", "a")], tmp_path / "fresh", manifests_dir="m")
    assert [p.relative_to(tmp_path / "fresh").as_posix() for p in written] == [
        "m/06-configmap-a.yaml"
    ]
