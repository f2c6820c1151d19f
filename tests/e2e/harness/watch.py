"""Watches, during an `up`, that every Secret a pod reads exists at every moment."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes


def api(kubeconfig: Path) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    )


def secrets_read_by(pod: Any) -> set[str]:
    names: set[str] = set()
    spec = pod.spec
    for volume in spec.volumes or []:
        if volume.secret is not None:
            names.add(volume.secret.secret_name)
        if volume.projected is not None:
            for source in volume.projected.sources or []:
                if source.secret is not None:
                    names.add(source.secret.name)
    for container in [*(spec.init_containers or []), *(spec.containers or [])]:
        for env in container.env or []:
            ref = env.value_from.secret_key_ref if env.value_from else None
            if ref is not None:
                names.add(ref.name)
        for source in container.env_from or []:
            if source.secret_ref is not None:
                names.add(source.secret_ref.name)
    return names


@dataclass
class SecretPresenceWatch:
    """Polls pods and Secrets; records each moment a running pod's Secret was absent."""

    kubeconfig: Path
    namespace: str
    interval: float = 0.2
    missing: list[tuple[float, str, str]] = field(default_factory=list)
    polls: int = 0
    seen_secrets: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SecretPresenceWatch:
        self._core = api(self.kubeconfig)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            pods = self._core.list_namespaced_pod(self.namespace).items
            present = {
                s.metadata.name for s in self._core.list_namespaced_secret(self.namespace).items
            }
            self.seen_secrets |= present
            for pod in pods:
                if not _running(pod):
                    continue
                for name in secrets_read_by(pod) - present:
                    if self._still_needed(pod.metadata.name, name):
                        self.missing.append((time.time(), pod.metadata.name, name))
            self.polls += 1
            self._stop.wait(self.interval)

    def _still_needed(self, pod_name: str, secret: str) -> bool:
        """Pods and Secrets are two lists read one after the other: a pod listed before its
        rollout replaced it may be gone, or terminating, by the time its old Secret is found
        absent. Read again, after the Secret list: a running pod without its Secret counts."""
        try:
            pod = self._core.read_namespaced_pod(pod_name, self.namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        if not _running(pod):
            return False
        try:
            self._core.read_namespaced_secret(secret, self.namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False


def _running(pod: Any) -> bool:
    finished = pod.status is not None and pod.status.phase in ("Succeeded", "Failed")
    return pod.metadata.deletion_timestamp is None and not finished
