"""Reading a folder of manifests: the same objects, in file order, on one core or on several;
and every object handed to `on_loaded` exactly once, as its slice of files is parsed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.offline.tools import REPO_ROOT


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


# Run in a fresh interpreter: the folder is read on several processes only by one that has
# no threads yet (a test session has some), exactly as the CLI reads it.
READ = """
import json, sys
from pathlib import Path
from infra.offline import manifests
manifests.PARALLEL_FROM = int(sys.argv[2])
seen, submits = [], []
def on_loaded(objects, submit):
    seen.extend(o["metadata"]["name"] for o in objects)
    submits.append(submit is not None)
loaded = manifests.load_dir(Path(sys.argv[1]), on_loaded)
print(json.dumps({"loaded": [m["metadata"]["name"] for m in loaded], "seen": seen,
                  "submits": submits}))
"""


@pytest.mark.parametrize("parallel", [False, True], ids=["one-core", "workers"])
def test_objects_come_back_in_file_order_and_each_once_to_on_loaded(
    tmp_path: Path, parallel: bool
) -> None:
    folder = _folder(tmp_path, 260)
    proc = subprocess.run(
        [sys.executable, "-c", READ, str(folder), "200" if parallel else "10000"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    result = json.loads(proc.stdout)
    expected = [f"cm-{i}-{j}" for i in range(260) for j in range(1 + i % 3)]
    assert result["loaded"] == expected  # sorted file names, documents in order
    assert sorted(result["seen"]) == sorted(expected)
    if parallel:
        assert len(result["submits"]) > 2 and all(result["submits"]), "slices, one by one"
    else:
        assert result["submits"] == [False]
