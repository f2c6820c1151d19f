"""The sandbox worker image installs the SDK the project tests: sandbox/requirements.txt
(what its image installs, hashed) pins the SDK and its dependencies at the lock's versions."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT

PIN = re.compile(r"^([a-z0-9_.-]+)==(\S+)", re.MULTILINE)


def test_image_requirements_are_the_locked_sdk() -> None:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    (sdk,) = [line for line in dependencies if line.startswith("anthropic")]
    text = (REPO_ROOT / "sandbox" / "requirements.txt").read_text()
    image = dict(PIN.findall(text))
    locked = dict(PIN.findall((REPO_ROOT / "requirements.lock").read_text()))
    assert f"anthropic=={image['anthropic']}" == sdk
    assert image == {name: locked[name] for name in image}
    for block in re.split(r"\n(?=[a-z0-9_.-]+==)", text.split("\n", 2)[2]):
        assert "--hash=sha256:" in block, f"unhashed pin: {block.splitlines()[0]}"
    dockerfile = (REPO_ROOT / "sandbox" / "Dockerfile").read_text()
    assert "--require-hashes -r /tmp/requirements.txt" in dockerfile
