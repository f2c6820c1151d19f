"""A server of servers/ run as its pod would run it: the chart's environment, its mounts as files.

The environment and the mount paths come from the dev stack's own render (the program's values
through the real chart), with every mount path moved under a temporary directory and the
database pointed at the suite's PostgreSQL. Secrets are laid out the way the kubelet's atomic
writer does it (`..data` -> a timestamped directory, one link per key), so a rotation is a swap.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client

from infra.offline.audit.advertised import in_own_loop, mcp_session
from infra.offline.mocked import render_environment
from infra.pure import naming
from infra.pure.config import PerimeterConfig
from servers.runtime import contract
from tests.certificates.issued import make_ca, make_serving
from tests.processes import stop as stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1
HOSTNAME = "localhost"


# asyncio.run that leaves the Pulumi SDK's loop (`Deployment.of` synthesizes) in place.
run = in_own_loop


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_secret(directory: Path, files: Mapping[str, str]) -> None:
    """What the kubelet does on every Secret update: a new data directory, then one rename."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f"..{time.time_ns()}"
    stamp.mkdir()
    for name, value in files.items():
        target = stamp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value)
        target.chmod(0o440)
    staging = directory / "..data_tmp"
    staging.symlink_to(stamp.name)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    staging.rename(directory / "..data")
    if old:
        shutil.rmtree(directory / old)
    for top in {name.split("/", 1)[0] for name in files}:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in directory.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and not entry.exists():
            entry.unlink()  # a key the Secret no longer holds


def credential_files(credentials: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """tool -> (role, password) as the projected volume lays them out: <tool>/username, ..."""
    return {
        f"{tool}/{item}": value
        for tool, (role, password) in credentials.items()
        for item, value in (("username", role), ("password", password))
    }


@dataclass
class Deployment:
    """The rendered Deployment's container: its environment and where each volume is mounted."""

    env: dict[str, str]
    mounts: dict[str, str]  # volume name -> mount path
    liveness: str
    readiness: str

    @classmethod
    def of(cls, config: PerimeterConfig, server: str) -> Deployment:
        release = naming.mcp_release(server)
        (deployment,) = [
            m
            for m in render_environment(config)
            if m["kind"] == "Deployment" and m["metadata"]["name"] == release
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return cls(
            env={e["name"]: e["value"] for e in container["env"]},
            mounts={m["name"]: m["mountPath"] for m in container["volumeMounts"]},
            liveness=container["livenessProbe"]["httpGet"]["path"],
            readiness=container["readinessProbe"]["httpGet"]["path"],
        )


@dataclass
class ServerFiles:
    """The pod's mounted files under `root`, and the values written into them."""

    root: Path
    deployment: Deployment
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    ca_pem: str = ""

    def path(self, volume: str) -> Path:
        return self.root / self.deployment.mounts[volume].lstrip("/")

    def environment(self, database_port: int, listen_port: int) -> dict[str, str]:
        env = dict(self.deployment.env)
        for mount in self.deployment.mounts.values():
            for name, value in env.items():
                if value == mount or value.startswith(mount + "/"):
                    env[name] = str(self.root / value.lstrip("/"))
        env.update(
            {
                contract.LISTEN_ADDR: f"127.0.0.1:{listen_port}",
                contract.DATABASE_HOST: "127.0.0.1",
                contract.DATABASE_PORT: str(database_port),
                contract.DATABASE_SSLMODE: "disable",  # the suite's server speaks plain TCP
            }
        )
        return env

    def write(
        self, credentials: Mapping[str, tuple[str, str]], backends: Mapping[str, str]
    ) -> None:
        """credentials: tool -> (role, password); backends: backend name -> credential."""
        _, ca = make_ca()
        _, leaf = make_serving(ca, dns_names=[HOSTNAME])
        self.ca_pem = ca["cert_pem"]
        write_secret(self.path("tls"), {"tls.crt": leaf["cert_pem"], "tls.key": leaf["key_pem"]})
        write_secret(self.path("platform-token"), {"token": self.token})
        if "database-credentials" in self.deployment.mounts:
            write_secret(self.path("database-credentials"), credential_files(credentials))
        for backend, credential in backends.items():
            write_secret(self.path(f"backend-{backend}"), {"credential": credential})


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    url: str
    base: str
    files: ServerFiles
    log: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.files.ca_pem)

    def get(self, path: str, **headers: str) -> httpx2.Response:
        with httpx2.Client(verify=self.ssl_context(), timeout=15) as http:
            return http.get(self.base + path, headers=headers)

    def post(self, body: Any, **headers: str) -> httpx2.Response:
        with httpx2.Client(verify=self.ssl_context(), timeout=15) as http:
            return http.post(
                self.url,
                json=body,
                headers={"Accept": "application/json, text/event-stream", **headers},
            )

    @asynccontextmanager
    async def client(self, token: str | None = None) -> AsyncIterator[Client]:
        bearer = self.files.token if token is None else token
        async with mcp_session(self.url, bearer, self.ssl_context()) as client:
            yield client

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def _die_with_the_suite() -> None:
    """In the server's process before exec: SIGTERM when the test process dies, even by SIGKILL
    (PR_SET_PDEATHSIG), so no server outlives a run killed before its teardown."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(module: str, env: Mapping[str, str], files: ServerFiles, port: int) -> RunningServer:
    """`python -m <module>` with exactly the pod's environment (plus PATH), up once /livez
    answers over TLS; fails with the server's own output if it exits first."""
    log = files.root / "server.log"
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env={"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **env},
        cwd=REPO_ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_the_suite,
    )
    handle.close()
    base = f"https://{HOSTNAME}:{port}"
    running = RunningServer(process, base + env[contract.PATH], base, files, log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{module} exited {process.returncode}:\n{running.output()}")
            try:
                if running.get(files.deployment.liveness).status_code == 200:
                    return running
            except (httpx2.HTTPError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(
            f"{module} did not answer {files.deployment.liveness}:\n{running.output()}"
        )
    except BaseException:  # not up, or the run interrupted while waiting: stopped either way
        stop(running)
        raise


def stop(running: RunningServer) -> None:
    """By PID: SIGTERM, then SIGKILL after 10 s."""
    stop_process(running.process)


def run_to_exit(
    module: str, env: Mapping[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """For a server that must refuse to start: its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env={"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
