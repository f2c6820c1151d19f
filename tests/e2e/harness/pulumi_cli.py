"""The real `pulumi` CLI run against this repo's project, with everything it writes kept out
of the repo: a file backend and PULUMI_HOME in a temp dir, and the stack's settings in a
copy of its stack file (`--config-file`), so secrets set by a test never touch the repo."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness.pending import pending_objects
from tests.e2e.harness.tools import REPO, Tools

PASSPHRASE = "agent-perimeter-e2e"
# The wall-clock bound of one `up` or `destroy`: shipped stacks take well under a minute on
# 2 cores. Past it the test fails naming what the engine still waited for.
UP_DESTROY_SECONDS = float(os.environ.get("E2E_UP_DESTROY_SECONDS", "300"))


def stop_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class PulumiRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class PulumiWorkspace:
    """One PULUMI_HOME and file backend for the whole session; stacks are created in it."""

    tools: Tools
    kubeconfig: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ap-e2e-pulumi-")))
    project_dir: Path = REPO

    def __post_init__(self) -> None:
        (self.root / "home").mkdir(exist_ok=True)
        (self.root / "state").mkdir(exist_ok=True)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PULUMI_", "KUBECONFIG", "AGENT_PERIMETER_"))
        }
        env.update(
            PATH=self.tools.path_env(),
            PULUMI_HOME=str(self.root / "home"),
            PULUMI_BACKEND_URL=f"file://{self.root / 'state'}",
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            PULUMI_SKIP_UPDATE_CHECK="1",
            PULUMI_SKIP_CONFIRMATIONS="1",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true"
            if self.tools.built_engine
            else "false",
            KUBECONFIG=str(self.kubeconfig),
            NO_COLOR="1",
        )
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> PulumiRun:
        argv = [self.tools.pulumi, *args, "--non-interactive"]
        begin = time.monotonic()
        # Its own process group: on a timeout or an interrupted run, the CLI and every
        # plugin and language host it started are stopped together.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd or self.project_dir,
            env=self.env(env),
            start_new_session=True,
        )
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except BaseException:
            stop_group(process)
            raise
        return PulumiRun(list(args), process.returncode, out, err, time.monotonic() - begin)

    def install_built_plugins(self) -> None:
        """Built providers go into this PULUMI_HOME the way `pulumi plugin install` puts them."""
        for name, (version, binary) in self.tools.providers.items():
            done = self.run("plugin", "install", "resource", name, version, "--file", str(binary))
            if done.returncode != 0:
                raise RuntimeError(f"installing the {name} provider failed:\n{done.output}")

    def stack(self, name: str, stack_file: Path | None = None) -> PulumiStack:
        return PulumiStack(self, name, stack_file or self.project_dir / f"Pulumi.{name}.yaml")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PulumiStack:
    workspace: PulumiWorkspace
    name: str
    source_file: Path
    config_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config_file = self.workspace.root / f"Pulumi.{self.name}.yaml"
        shutil.copyfile(self.source_file, self.config_file)
        # Files a stack file names (system prompts) are relative to it: they travel with it.
        prompts = self.source_file.parent / "prompts"
        if prompts.is_dir():
            shutil.copytree(prompts, self.workspace.root / "prompts", dirs_exist_ok=True)

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 900,
        with_config: bool = True,
    ) -> PulumiRun:
        scope = ["--stack", self.name]
        if with_config:
            scope += ["--config-file", str(self.config_file)]
        result = self.workspace.run(*args, *scope, stdin=stdin, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} --stack {self.name} failed ({result.returncode}):\n"
                f"{result.output[-6000:]}"
            )
        return result

    def init(self) -> None:
        """`stack init` writes the stack's encryption salt into Pulumi.<stack>.yaml beside
        Pulumi.yaml: it moves into the stack's config copy, and the repo stays untouched."""
        written = self.workspace.project_dir / f"Pulumi.{self.name}.yaml"
        existed = written.exists()
        result = self.workspace.run("stack", "init", self.name)
        if result.returncode != 0 and "already exists" not in result.output:
            raise AssertionError(result.output)
        if written.exists() and not existed:
            salt = yaml.safe_load(written.read_text()).get("encryptionsalt")
            written.unlink()
            if salt:
                document = yaml.safe_load(self.config_file.read_text())
                document["encryptionsalt"] = salt
                self.config_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def set_secret(self, key: str, value: str) -> PulumiRun:
        """Values go on stdin: a PEM starts with '-', which the CLI would read as a flag."""
        return self.run("config", "set", "--secret", key, stdin=value)

    def set_secret_path(self, key: str, value: str) -> PulumiRun:
        return self.run("config", "set", "--secret", "--path", key, stdin=value)

    def set_plain(self, key: str, value: str) -> PulumiRun:
        return self.run("config", "set", key, stdin=value)

    def remove(self) -> None:
        """`stack rm` deletes Pulumi.<stack>.yaml beside Pulumi.yaml unless told not to."""
        self.run(
            "stack", "rm", "--yes", "--force", "--preserve-config", check=False, with_config=False
        )

    def bounded(self, *args: str, check: bool) -> PulumiRun:
        try:
            return self.run(*args, check=check, timeout=UP_DESTROY_SECONDS)
        except subprocess.TimeoutExpired:
            pending = pending_objects(self.workspace.tools.kubectl, self.workspace.kubeconfig)
            raise AssertionError(
                f"pulumi {args[0]} --stack {self.name} did not finish within "
                f"{UP_DESTROY_SECONDS:.0f} s (E2E_UP_DESTROY_SECONDS); still pending:\n  "
                + ("\n  ".join(pending) or "no object the cluster reports as pending")
            ) from None

    def up(self, *extra: str, check: bool = True) -> PulumiRun:
        return self.bounded("up", "--yes", "--skip-preview", *extra, check=check)

    def preview(self, *extra: str, check: bool = True) -> PulumiRun:
        return self.run("preview", *extra, check=check)

    def destroy(self, check: bool = True) -> PulumiRun:
        return self.bounded("destroy", "--yes", "--skip-preview", check=check)

    def export(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "export", with_config=False).stdout)

    def import_state(self, state: dict[str, Any]) -> PulumiRun:
        """`stack import` of an edited export: how a test moves the stack's clock on."""
        return self.run("stack", "import", with_config=False, stdin=json.dumps(state))

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--json", with_config=False).stdout)
