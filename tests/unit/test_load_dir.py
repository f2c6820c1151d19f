"""Reading a folder of manifests: the same objects, in file order, on one core or on several;
and every object handed to `on_loaded` exactly once, as its slice of files is parsed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import manifests as manifests_module
from infra.manifests import Manifest, load_dir


def _folder(tmp_path: Path, count: int) -> Path:
    for i in range(count):
        documents = [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}-{j}"}}
            for j in range(1 + i % 3)  # multi-document files too
        ]
        padding = "x" * (i % 7) * 1000  # files of different sizes: slices go largest first
        documents[0]["data"] = {"padding": padding}
        (tmp_path / f"object-{i:04d}.yaml").write_text(yaml.safe_dump_all(documents))
    return tmp_path


@pytest.mark.parametrize("parallel", [False, True], ids=["one-core", "workers"])
def test_objects_come_back_in_file_order_and_each_once_to_on_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    folder = _folder(tmp_path, 260)
    monkeypatch.setattr(manifests_module, "PARALLEL_FROM", 200 if parallel else 10_000)
    seen: list[str] = []
    submits: list[Callable[..., Any] | None] = []

    def on_loaded(objects: list[Manifest], submit: Callable[..., Any] | None) -> None:
        seen.extend(o["metadata"]["name"] for o in objects)
        submits.append(submit)

    loaded = load_dir(folder, on_loaded)
    expected = [
        f"cm-{i}-{j}" for i in range(260) for j in range(1 + i % 3)
    ]  # sorted file names, documents in order
    assert [m["metadata"]["name"] for m in loaded] == expected
    assert sorted(seen) == sorted(expected)
    assert all(s is not None for s in submits) if parallel else submits == [None]
    if parallel:
        assert len(submits) > 2, "slices come back one by one"
