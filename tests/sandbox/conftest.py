"""Fixtures: the loopback platform, and the real worker (`python -m sandbox`) pointed at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .platform import ENVIRONMENT_ID, FakePlatform

ENVIRONMENT_KEY = "sk-ant-envkey-" + "Q7x" * 12
REPO_ROOT = Path(__file__).resolve().parents[2]


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
class Worker:
    process: subprocess.Popen[str]
    workspace: Path
    scratch: Path
    health_port: int
    log_path: Path

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

    def start(extra_env: dict[str, str] | None = None, **flags: Any) -> Worker:
        key_file = tmp_path / "secret" / "key"
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(ENVIRONMENT_KEY + "\n")
        workspace = tmp_path / "workspace"
        scratch = tmp_path / "scratch"
        workspace.mkdir(exist_ok=True)
        scratch.mkdir(exist_ok=True)
        port = free_port()
        options = {
            "environment-id": ENVIRONMENT_ID,
            "environment-key-file": key_file,
            "workspace": workspace,
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
        paths = {"WORKSPACE": str(workspace), "SCRATCH": str(scratch)}
        env |= {name: value or paths[name] for name, value in (extra_env or {}).items()}
        with log_path.open("w") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, text=True
            )
        worker = Worker(process, workspace, scratch, port, log_path)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(10)
