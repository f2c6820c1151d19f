"""One shipped stack, deployed for real: the secrets a user sets, then `pulumi up`."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.pure.config import (
    PERIMETER_KEY,
    PROJECT,
    PerimeterConfig,
    backend_credential_keys,
    load_stack_file,
)
from tests.e2e.harness.control_plane import ControlPlane, ExternalCluster
from tests.e2e.harness.processes import wait_for
from tests.e2e.harness.pulumi_cli import PulumiRun, PulumiStack, PulumiWorkspace
from tests.e2e.harness.tools import REPO

NAMESPACE_GONE_SECONDS = 60.0


@dataclass
class Perimeter:
    workspace: PulumiWorkspace
    cluster: ControlPlane | ExternalCluster
    stack: PulumiStack
    config: PerimeterConfig
    runs: dict[str, PulumiRun] = field(default_factory=dict)

    @classmethod
    def prepare(
        cls,
        workspace: PulumiWorkspace,
        cluster: ControlPlane | ExternalCluster,
        name: str,
        proxy_tls: tuple[str, str],
        platform: Any,
        stack_file: Path | None = None,
    ) -> Perimeter:
        """A stack as a platform team sets one up: its file, the platform's address, its secrets."""
        stack = workspace.stack(name, stack_file)
        stack.init()
        perimeter = cls(workspace, cluster, stack, load_stack_file(stack.config_file))
        perimeter.await_namespace_absent()
        if perimeter.config.platform.enabled:
            settings = perimeter.config.platform.model_dump(exclude_none=True)
            perimeter.edit_settings(platform={**settings, "base_url": platform.base_url})
            perimeter.stack.set_secret(f"{PROJECT}:platformApiKey", platform.api_key)
            perimeter.stack.set_secret(f"{PROJECT}:tunnelCaCert", proxy_tls[0])
        else:
            perimeter.stack.set_secret(f"{PROJECT}:tunnelToken", secrets.token_urlsafe(32))
        perimeter.set_secrets(proxy_tls)
        return perimeter

    def set_secrets(self, proxy_tls: tuple[str, str]) -> None:
        cert, key = proxy_tls
        self.stack.set_secret(f"{PROJECT}:tunnelTlsCert", cert)
        self.stack.set_secret(f"{PROJECT}:tunnelTlsKey", key)
        for pool in self.config.sandboxes:
            self.stack.set_secret_path(
                f"{PROJECT}:environmentKeys.{pool.name}", secrets.token_urlsafe(32)
            )
        for database in self.config.databases:
            self.stack.set_secret_path(
                f"{PROJECT}:databaseAdminPasswords.{database}", secrets.token_urlsafe(24)
            )
        for key in backend_credential_keys(self.config):
            self.stack.set_secret_path(
                f"{PROJECT}:backendCredentials.{key}", secrets.token_urlsafe(24)
            )

    def await_namespace_absent(self, bound: float = NAMESPACE_GONE_SECONDS) -> None:
        """An earlier fixture's failed teardown must not become this test's state: the
        stack starts only once its namespace is gone, or the test fails naming what is left."""
        try:
            wait_for(f"namespace {self.namespace} to be gone", self._namespace_absent, bound)
        except TimeoutError:
            left = self.cluster.kubectl(
                "get", "all,secrets,configmaps", "-n", self.namespace, "-o", "name", check=False
            ).stdout.split()
            raise AssertionError(
                f"namespace {self.namespace} is still there {bound:.0f} s after an earlier test "
                f"tore its stack down; left in it: {', '.join(left) or 'nothing listed'}"
            ) from None

    def _namespace_absent(self) -> bool:
        return self.cluster.kubectl("get", "namespace", self.namespace, check=False).returncode != 0

    def required_runtime_classes(self) -> list[str]:
        from infra.engine.preflight import required_runtime_classes

        return [name for _, name in required_runtime_classes(self.config)]

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def kube(self, *args: str) -> Any:
        return json.loads(self.cluster.kubectl(*args, "-o", "json").stdout)

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return self.kube("get", kind, "-n", self.namespace)["items"]

    def edit_settings(self, **changes: Any) -> None:
        """Change structured settings in the stack's config file copy, as a user edits theirs."""
        document = yaml.safe_load(self.stack.config_file.read_text())
        document["config"][PERIMETER_KEY].update(changes)
        self.stack.config_file.write_text(yaml.safe_dump(document, sort_keys=False))
        self.config = load_stack_file(self.stack.config_file)


def live_audit(perimeter: Perimeter) -> subprocess.CompletedProcess[str]:
    """`python -m infra audit --live` against this stack's namespace, as JSON."""
    env = {**os.environ, "KUBECONFIG": str(perimeter.cluster.kubeconfig)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "audit",
            "--live",
            "--config",
            str(perimeter.stack.config_file),
            "--format",
            "json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
