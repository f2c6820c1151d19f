"""A Kubernetes control plane on loopback: etcd, kube-apiserver (Pod Security admission on),
kube-controller-manager, kube-scheduler and kwok with one fake node.

Everything lives in one temp dir with its own CA; every process is stopped by PID
and the dir removed on `stop()`, which the session fixture calls even when a test fails.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.e2e.harness.pending import conditions
from tests.e2e.harness.processes import Supervisor, free_port, wait_for
from tests.e2e.harness.tools import Tools

SERVICE_CIDR = "10.96.0.0/12"
NODE_NAME = "kwok-node-0"
CANARY = "e2e-canary"
CANARY_SECONDS = 30.0


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue_certificate(cwd: Path, name: str, subject: str, extensions: str) -> None:
    """A key and a certificate signed by the control plane's own CA."""
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
        cwd=cwd,
    )
    (cwd / f"{name}.ext").write_text(extensions)
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=agent-perimeter-e2e-ca",
        cwd=pki,
    )
    issue_certificate(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n",
    )
    issue_certificate(
        pki, "admin", "/CN=e2e-admin/O=system:masters", "extendedKeyUsage=clientAuth\n"
    )
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Config
            clusters:
            - name: e2e
              cluster:
                server: {server}
                certificate-authority: {pki / "ca.crt"}
            users:
            - name: e2e-admin
              user:
                client-certificate: {pki / "admin.crt"}
                client-key: {pki / "admin.key"}
            contexts:
            - name: e2e
              context: {{cluster: e2e, user: e2e-admin}}
            current-context: e2e
            """
        )
    )


@dataclass
class ControlPlane:
    tools: Tools
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ap-e2e-cp-")))
    supervisor: Supervisor | None = None
    kubeconfig: Path | None = None
    server: str = ""
    started_in: float = 0.0

    def start(self) -> ControlPlane:
        begin = time.monotonic()
        pki = self.root / "pki"
        logs = self.root / "logs"
        logs.mkdir(parents=True)
        make_pki(pki)
        self.supervisor = sup = Supervisor(logs)
        bins = self.tools.control_plane

        etcd_client, etcd_peer = free_port(), free_port()
        sup.start(
            "etcd",
            [
                str(bins["etcd"]),
                "--data-dir",
                str(self.root / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_client}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_client}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{etcd_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{etcd_peer}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
        )

        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        sup.start(
            "kube-apiserver",
            [
                str(bins["kube-apiserver"]),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.root / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--v=1",
            ],
        )
        self.kubeconfig = self.root / "kubeconfig"
        write_kubeconfig(self.kubeconfig, self.server, pki)
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

        def ready() -> bool:
            try:
                with urllib.request.urlopen(
                    f"{self.server}/readyz", context=context, timeout=2
                ) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for("kube-apiserver /readyz", ready, 90, sup.check_alive)

        sup.start(
            "kube-controller-manager",
            [
                str(bins["kube-controller-manager"]),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--v=1",
            ],
        )
        sup.start(
            "kube-scheduler",
            [
                str(bins["kube-scheduler"]),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ],
        )
        kwok_config = self.tools.kwok_config
        sup.start(
            "kwok",
            [
                str(bins["kwok"]),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={kwok_config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                # The heartbeat stage renews the node's status only every ~10 min and
                # relies on a Lease for liveness: without one, the node controller marks the
                # node NotReady after ~50 s and every Deployment loses its availability.
                "--node-lease-duration-seconds=40",
                "--node-ip=127.0.0.1",
                f"--node-port={free_port()}",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )
        self.kubectl("apply", "-f", "-", stdin=json.dumps(_fake_node()))
        wait_for("the kwok node to be Ready", self._node_ready, 90, sup.check_alive)
        wait_for("the default ServiceAccount", self._default_sa, 60, sup.check_alive)
        self.prove_pods_run()
        self.started_in = time.monotonic() - begin
        return self

    def prove_pods_run(self, bound: float = CANARY_SECONDS) -> None:
        """A canary pod must reach Running and Ready and a canary Job must complete, or the
        run stops here: kwok's stages are what make pods "run", and stages that never fire
        would otherwise show up as a readiness timeout in every test."""
        self.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": _canaries()}),
        )
        seen: dict[str, dict] = {}

        def running() -> bool:
            seen.update(pod=self._get("pod", CANARY), job=self._get("job", CANARY))
            return _pod_running_and_ready(seen["pod"]) and _job_complete(seen["job"])

        try:
            alive = self.supervisor.check_alive if self.supervisor else None
            wait_for("a canary pod and Job", running, bound, alive)
        except TimeoutError:
            stages = [
                d["metadata"]["name"]
                for d in yaml.safe_load_all(self.tools.kwok_config.read_text())
                if d
            ]
            raise RuntimeError(
                f"kwok's stages did not make pods run: within {bound:.0f} s the canary pod "
                f"was {_status(seen['pod'])} and the canary Job {_status(seen['job'])} (wanted: "
                f"pod Running and Ready, Job Complete). Stage files in "
                f"{self.tools.kwok_config}: {', '.join(stages) or 'none'}. The kwok-stages "
                "entry of scripts/e2e/build-tools.sh (KWOK_STAGES) decides them."
            ) from None
        finally:
            for kind in ("job", "pod"):
                self.kubectl(
                    "delete",
                    kind,
                    CANARY,
                    "-n",
                    "default",
                    "--ignore-not-found",
                    "--wait=false",
                    check=False,
                )

    def _get(self, kind: str, name: str) -> dict:
        out = self.kubectl("get", kind, name, "-n", "default", "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert self.kubeconfig is not None
        return subprocess.run(
            [str(self.tools.control_plane["kubectl"]), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def _node_ready(self) -> bool:
        out = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _default_sa(self) -> bool:
        return (
            self.kubectl(
                "get", "serviceaccount", "default", "-n", "default", check=False
            ).returncode
            == 0
        )

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop_all()
        shutil.rmtree(self.root, ignore_errors=True)


def _fake_node() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": NODE_NAME,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "220"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "220"},
        },
    }


def _canary_pod_spec(restart: str) -> dict:
    return {
        "restartPolicy": restart,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 600,  # a pod-delete stage that waits would show
        "containers": [{"name": "canary", "image": "registry.k8s.io/pause:3.10"}],
    }


def _canaries() -> list[dict]:
    meta = {"name": CANARY, "namespace": "default", "labels": {"app": CANARY}}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _canary_pod_spec("Always")},
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": _canary_pod_spec("Never")},
            },
        },
    ]


def _pod_running_and_ready(pod: dict) -> bool:
    return (
        pod.get("status", {}).get("phase") == "Running" and conditions(pod).get("Ready") == "True"
    )


def _job_complete(job: dict) -> bool:
    return conditions(job).get("Complete") == "True"


def _status(obj: dict) -> str:
    if not obj:
        return "absent"
    listed = ", ".join(f"{kind}={state}" for kind, state in conditions(obj).items())
    return f"{obj.get('status', {}).get('phase', 'without a phase')} ({listed or 'no conditions'})"


@dataclass
class ExternalCluster:
    """A cluster the user points the tier at with E2E_KUBECONFIG (kind, k3d, a dev cluster)."""

    tools: Tools
    kubeconfig: Path
    started_in: float = 0.0

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def stop(self) -> None:
        """Not ours to stop."""
