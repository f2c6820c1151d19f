"""The server image installs what the project tests: servers/requirements.txt (what the
Dockerfile installs, hashed) pins the `servers` extra at exactly the lock's versions."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT

PIN = re.compile(r"^([a-z0-9_.-]+)==(\S+)", re.MULTILINE)


def test_image_requirements_are_the_locked_servers_extra() -> None:
    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["servers"]
    direct = {re.split(r"[\[=]", line, maxsplit=1)[0] for line in extra}
    listed = (REPO_ROOT / "servers" / "requirements.in").read_text().splitlines()
    assert {
        re.split(r"\[", line)[0] for line in listed if line and not line.startswith("#")
    } == direct
    image = dict(PIN.findall((REPO_ROOT / "servers" / "requirements.txt").read_text()))
    locked = dict(PIN.findall((REPO_ROOT / "requirements.lock").read_text()))
    assert direct <= set(image)
    assert {name: image[name] for name in image} == {name: locked[name] for name in image}
    assert "--hash=sha256:" in (REPO_ROOT / "servers" / "requirements.txt").read_text()
    dockerfile = (REPO_ROOT / "servers" / "exports" / "Dockerfile").read_text()
    assert "--require-hashes -r /tmp/requirements.txt" in dockerfile
