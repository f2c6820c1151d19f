"""Fixtures: the loopback platform, and the real worker (`python -m sandbox`) pointed at it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import stop

from .attempts import ENVIRONMENT_KEY
from .platform import ENVIRONMENT_ID, FakePlatform

REPO_ROOT = Path(__file__).resolve().parents[2]
# The tools' user, as in the chart: not the worker's, so nothing a tool runs can read the key.
TOOLS_UID = 65533
TOOLS_PYTHON = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    server = FakePlatform().start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ToolHost:
    """`python -m sandbox.toolhost` as the chart's tools container runs it: another user, its
    own workspace and scratch, and a socket the worker connects to."""

    process: subprocess.Popen[str]
    socket: Path
    workspace: Path
    scratch: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def start_tool_host(base: Path, log_path: Path) -> ToolHost:
    """Its directories sit in `base`, outside the worker's (owner-only) temp dir, owned by the
    tools' user; the worker's key file is not reachable from there."""
    if os.geteuid() != 0:
        raise AssertionError("the sandbox tests run the tool host as another user: run as root")
    base.chmod(0o755)
    dirs = {name: base / name for name in ("workspace", "scratch", "run")}
    for path in dirs.values():
        path.mkdir()
        os.chown(path, TOOLS_UID, TOOLS_UID)
    socket_path = dirs["run"] / "tools.sock"
    argv = [TOOLS_PYTHON, "-m", "sandbox.toolhost", "--socket", str(socket_path)]
    argv += ["--workspace", str(dirs["workspace"]), "--scratch-dir", str(dirs["scratch"])]
    # The suite's packages, read by the system's interpreter of the same version: the venv's
    # own interpreter may live where only root can reach (pyenv under /root).
    path = os.pathsep.join([str(REPO_ROOT), sysconfig.get_paths()["purelib"]])
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": path, "LANG": "C.UTF-8"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            cwd="/",
            user=TOOLS_UID,
            group=TOOLS_UID,
            extra_groups=[],
        )
    host = ToolHost(process, socket_path, dirs["workspace"], dirs["scratch"], log_path)
    deadline = time.monotonic() + 30
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the tool host did not start:\n{host.log()}")
        time.sleep(0.05)
    return host


@dataclass
class Worker:
    process: subprocess.Popen[str]
    health_port: int
    log_path: Path
    tools: ToolHost

    def log(self) -> str:
        return self.log_path.read_text()

    def log_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def terminate(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except urllib.error.URLError as e:  # not listening (yet)
            return 0, {"error": str(e.reason)}

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited ({self.process.returncode}) before {what}:\n{self.log()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")


@pytest.fixture
def start_worker(platform: FakePlatform, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []
    hosts: list[ToolHost] = []

    def start(extra_env: dict[str, str] | None = None, **flags: Any) -> Worker:
        key_file = tmp_path / "secret" / "key"
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(ENVIRONMENT_KEY + "\n")
        key_file.chmod(0o400)
        host = start_tool_host(
            Path(tempfile.mkdtemp(prefix="ap-tools-")), tmp_path / f"tools-{len(hosts)}.log"
        )
        hosts.append(host)
        scratch = tmp_path / f"worker-scratch-{len(started)}"
        scratch.mkdir()
        port = free_port()
        options = {
            "environment-id": ENVIRONMENT_ID,
            "environment-key-file": key_file,
            "tool-socket": host.socket,
            "run-timeout-seconds": 60,
            "max-tool-calls": 50,
            "max-idle": "1s",
            "health-host": "127.0.0.1",
            "health-port": port,
            "scratch-dir": scratch,
            "readiness-window-seconds": 5,
        } | {k.replace("_", "-"): v for k, v in flags.items()}
        argv = [sys.executable, "-m", "sandbox"]
        for name, value in options.items():
            argv += [f"--{name}", str(value)]
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = {
            "PATH": os.environ["PATH"],
            "ANTHROPIC_BASE_URL": platform.base_url,
            "PYTHONPATH": str(REPO_ROOT),
            "WORKER_ONLY_SETTING": "not-for-tools",
        }
        # Placeholders in extra_env name the worker's own paths, filled in here.
        paths = {"WORKSPACE": str(host.workspace), "SCRATCH": str(host.scratch)}
        env |= {name: value or paths[name] for name, value in (extra_env or {}).items()}
        with log_path.open("w") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, text=True
            )
        worker = Worker(process, port, log_path, host)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        # The worker first: its connection closing ends the session on the host, which kills
        # what the session started before the host itself stops.
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(10)
        for host in hosts:
            stop(host.process, grace=30)
            shutil.rmtree(host.workspace.parent, ignore_errors=True)
