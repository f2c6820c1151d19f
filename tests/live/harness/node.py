"""A real one-node Kubernetes on this host: the control plane, containerd, kubelet,
kube-proxy, kube-network-policies and CoreDNS, every process a host process stopped by
PID. Pods run for real (runc), and NetworkPolicies are enforced.

State lives in one temp dir; `stop()` removes pods through the API first (so the kubelet
runs CNI DEL), stops processes in reverse order, then removes every rule, chain, table,
link, mount, cgroup and sysctl change the run made. The caller compares host snapshots
taken before `start()` and after `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness.control_plane import (
    SERVICE_CIDR,
    issue_certificate,
    openssl,
    write_kubeconfig,
)
from tests.e2e.harness.processes import Supervisor, free_port, wait_for
from tests.live.harness import host
from tests.live.harness.containment import (
    APISERVER_STANDIN,
    POD_CIDR,
    POD_RANGE,
    Containment,
    host_address,
)
from tests.live.harness.tools import LiveTools

NODE_NAME = "ap-live-node"
BRIDGE = "ap-live0"
DNS_IP = "10.96.0.10"
KNP_TABLE = "inet kube-network-policies"


def make_pki(pki: Path, host_ip: str) -> None:
    pki.mkdir(parents=True)
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=agent-perimeter-live-ca", cwd=pki,
    )  # fmt: skip
    names = ",".join(
        f"DNS:{n}"
        for n in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
    )
    issue_certificate(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        f"subjectAltName=IP:127.0.0.1,IP:{host_ip},IP:{APISERVER_STANDIN},IP:10.96.0.1,{names}\n"
        "extendedKeyUsage=serverAuth\n",
    )
    issue_certificate(
        pki, "admin", "/CN=live-admin/O=system:masters", "extendedKeyUsage=clientAuth\n"
    )
    issue_certificate(
        pki,
        "kubelet",
        f"/CN=system:node:{NODE_NAME}/O=system:nodes",
        f"subjectAltName=IP:{host_ip},DNS:{NODE_NAME}\nextendedKeyUsage=clientAuth,serverAuth\n",
    )
    issue_certificate(pki, "kube-proxy", "/CN=system:kube-proxy", "extendedKeyUsage=clientAuth\n")
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _user_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    write_kubeconfig(path, server, pki)
    text = path.read_text().replace(f"{pki}/admin.", f"{pki}/{user}.")
    path.write_text(text)


@dataclass
class LiveNode:
    tools: LiveTools
    containment: Containment
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ap-live-")))
    supervisor: Supervisor | None = None
    kubeconfig: Path | None = None
    server: str = ""
    host_ip: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    sysctls_before: dict[str, str | None] = field(default_factory=dict)
    nft_before: list[str] = field(default_factory=list)
    links_before: set[str] = field(default_factory=set)
    iptables_before: dict[str, list[str]] = field(default_factory=dict)

    # --- start ------------------------------------------------------------------------

    def start(self) -> LiveNode:
        begin = time.monotonic()
        self.host_ip = host_address()
        self.sysctls_before = {k: host.sysctl(k) for k in host.SYSCTLS}
        self.nft_before = host.run("nft", "list", "tables").splitlines()
        self.links_before = host.links()
        self.iptables_before = {
            tool: host.run(f"{tool}-save").splitlines() for tool in ("iptables", "ip6tables")
        }
        host.set_sysctl("net.ipv4.ip_forward", "1")
        host.set_sysctl("net.bridge.bridge-nf-call-iptables", "1")
        logs = self.root / "logs"
        logs.mkdir(parents=True)
        pki = self.root / "pki"
        make_pki(pki, self.host_ip)
        self.supervisor = Supervisor(logs)
        self._control_plane(pki)
        self.timings["apiserver ready"] = time.monotonic() - begin
        self._containerd()
        self.timings["images imported"] = time.monotonic() - begin
        self._kubelet(pki)
        self.timings["node Ready"] = time.monotonic() - begin
        self._kube_proxy(pki)
        self.containment.verify()  # kube-proxy's first sync put its jumps first
        self._addons()
        self._policy_agent(pki)
        wait_for("CoreDNS Ready", self._coredns_ready, 120, self.supervisor.check_alive)
        self.containment.verify()
        self.timings["cluster ready"] = time.monotonic() - begin
        return self

    def _control_plane(self, pki: Path) -> None:
        sup = self.supervisor
        assert sup is not None
        b = self.tools.binaries
        etcd_client, etcd_peer = free_port(), free_port()
        sup.start(
            "etcd",
            [
                str(b["etcd"]), "--data-dir", str(self.root / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
                "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
                "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync", "--log-level", "warn",
            ],
        )  # fmt: skip
        port = free_port()
        self.server = f"https://{self.host_ip}:{port}"
        # Bound on the host address (the kubelet reaches it there); advertised at the stand-in
        # address, so pods reach it forwarded through the stand-in namespace, where policies
        # apply (traffic to the node's own addresses is never policed).
        sup.start(
            "kube-apiserver",
            [
                str(b["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                f"--bind-address={self.host_ip}", f"--advertise-address={APISERVER_STANDIN}",
                f"--secure-port={port}", f"--cert-dir={self.root / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction", "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP", "--v=1",
            ],
        )  # fmt: skip
        self.kubeconfig = self.root / "admin.kubeconfig"
        write_kubeconfig(self.kubeconfig, self.server, pki)
        wait_for(
            "kube-apiserver /readyz",
            lambda: self.kubectl("get", "--raw=/readyz", check=False).returncode == 0,
            90,
            sup.check_alive,
        )
        sup.start(
            "kube-controller-manager",
            [
                str(b["kube-controller-manager"]), f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}", "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}", "--v=1",
            ],
        )  # fmt: skip
        sup.start(
            "kube-scheduler",
            [
                str(b["kube-scheduler"]), f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
            ],
        )  # fmt: skip

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    def ctr(self, *args: str, check: bool = True) -> str:
        return host.run("ctr", "--address", str(self.socket), "-n", "k8s.io", *args, check=check)

    def _containerd(self) -> None:
        assert self.supervisor is not None
        c = self.root / "containerd"
        net = self.root / "cni" / "net.d"
        net.mkdir(parents=True)
        (c).mkdir()
        (c / "config.toml").write_text(
            textwrap.dedent(
                f"""\
                version = 2
                root = "{c}/root"
                state = "{c}/state"
                [grpc]
                  address = "{self.socket}"
                [ttrpc]
                  address = "{self.socket}.ttrpc"
                [debug]
                  address = "{c}/debug.sock"
                [plugins."io.containerd.grpc.v1.cri"]
                  sandbox_image = "{self.tools.images["pause"].ref}"
                  stream_server_address = "127.0.0.1"
                  stream_server_port = "0"
                  enable_selinux = false
                  # Root here lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj of -998
                  # makes runc fail ("can't get final child's PID from pipe").
                  restrict_oom_score_adj = true
                  netns_mounts_under_state_dir = true
                  [plugins."io.containerd.grpc.v1.cri".containerd]
                    snapshotter = "overlayfs"
                    default_runtime_name = "runc"
                    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                      runtime_type = "io.containerd.runc.v2"
                      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                        SystemdCgroup = false
                  [plugins."io.containerd.grpc.v1.cri".cni]
                    bin_dir = "/usr/lib/cni"
                    conf_dir = "{net}"
                    max_conf_num = 1
                """
            )
        )
        conflist = {
            "cniVersion": "1.0.0",
            "name": "ap-live",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,  # containment: pod traffic is never masqueraded
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.root / "cni" / "ipam"),
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (net / "10-ap-live.conflist").write_text(json.dumps(conflist, indent=2))
        self.supervisor.start("containerd", ["containerd", "--config", str(c / "config.toml")])
        wait_for(
            "containerd",
            lambda: (
                subprocess.run(
                    ["ctr", "--address", str(self.socket), "version"], capture_output=True
                ).returncode
                == 0
            ),
            30,
            self.supervisor.check_alive,
        )
        for image in self.tools.images.values():
            self.ctr("images", "import", str(image.archive))

    def _kubelet(self, pki: Path) -> None:
        assert self.supervisor is not None
        k = self.root / "kubelet"
        (k / "root").mkdir(parents=True)
        (self.root / "pod-logs").mkdir()
        resolv = self.root / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\n")  # pods use kube-dns; the host's is not theirs
        kubeconfig = self.root / "kubelet.kubeconfig"
        _user_kubeconfig(kubeconfig, self.server, pki, "kubelet")
        port, healthz = free_port(), free_port()
        (k / "config.yaml").write_text(
            textwrap.dedent(
                f"""\
                apiVersion: kubelet.config.k8s.io/v1beta1
                kind: KubeletConfiguration
                address: "{self.host_ip}"
                port: {port}
                readOnlyPort: 0
                healthzBindAddress: 127.0.0.1
                healthzPort: {healthz}
                tlsCertFile: "{pki / "kubelet.crt"}"
                tlsPrivateKeyFile: "{pki / "kubelet.key"}"
                authentication:
                  anonymous: {{enabled: false}}
                  webhook: {{enabled: true}}
                  x509: {{clientCAFile: "{pki / "ca.crt"}"}}
                authorization: {{mode: Webhook}}
                containerRuntimeEndpoint: "unix://{self.socket}"
                cgroupDriver: cgroupfs
                failCgroupV1: false
                failSwapOn: false
                cgroupsPerQOS: true
                enforceNodeAllocatable: [pods]
                clusterDomain: cluster.local
                clusterDNS: ["{DNS_IP}"]
                resolvConf: "{resolv}"
                podLogsDir: "{self.root / "pod-logs"}"
                rotateCertificates: false
                serializeImagePulls: false
                evictionHard: {{memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
                imageGCHighThresholdPercent: 100
                imageGCLowThresholdPercent: 99
                maxPods: 110
                """
            )
        )
        self.supervisor.start(
            "kubelet",
            [
                str(self.tools.binaries["kubelet"]), f"--config={k / 'config.yaml'}",
                f"--kubeconfig={kubeconfig}", f"--root-dir={k / 'root'}",
                f"--hostname-override={NODE_NAME}", f"--node-ip={self.host_ip}", "--v=1",
            ],
        )  # fmt: skip
        wait_for("the node to be Ready", self._node_ready, 180, self.supervisor.check_alive)
        wait_for("the default ServiceAccount", self._default_sa, 60, self.supervisor.check_alive)

    def _kube_proxy(self, pki: Path) -> None:
        assert self.supervisor is not None
        kubeconfig = self.root / "kube-proxy.kubeconfig"
        _user_kubeconfig(kubeconfig, self.server, pki, "kube-proxy")
        healthz, metrics = free_port(), free_port()
        config = self.root / "kube-proxy.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                apiVersion: kubeproxy.config.k8s.io/v1alpha1
                kind: KubeProxyConfiguration
                mode: iptables
                clientConnection: {{kubeconfig: "{kubeconfig}"}}
                hostnameOverride: "{NODE_NAME}"
                clusterCIDR: {POD_RANGE}
                bindAddress: "{self.host_ip}"
                healthzBindAddress: "127.0.0.1:{healthz}"
                metricsBindAddress: "127.0.0.1:{metrics}"
                iptables: {{localhostNodePorts: false}}
                conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
                """
            )
        )
        self.supervisor.start(
            "kube-proxy", [str(self.tools.binaries["kube-proxy"]), f"--config={config}", "--v=1"]
        )

        def healthy() -> bool:
            with contextlib.suppress(OSError):
                import urllib.request

                with urllib.request.urlopen(f"http://127.0.0.1:{healthz}/healthz", timeout=2):
                    return True
            return False

        wait_for("kube-proxy healthz", healthy, 60, self.supervisor.check_alive)

    def _addons(self) -> None:
        text = Path(__file__).with_name("addons.yaml").read_text()
        text = text.replace("COREDNS_IMAGE", self.tools.images["coredns"].ref).replace(
            "DNS_IP", DNS_IP
        )
        self.kubectl("apply", "-f", "-", stdin=text)

    def _policy_agent(self, pki: Path) -> None:
        """kube-network-policies v0.8.0 reads only the in-cluster config: it runs in a private
        mount namespace with a tmpfs over /run holding its token and our CA."""
        assert self.supervisor is not None
        wait_for(
            "the policy agent's ServiceAccount",
            lambda: (
                self.kubectl(
                    "-n", "kube-system", "get", "sa", "kube-network-policies", check=False
                ).returncode
                == 0
            ),
            30,
        )
        sa = self.root / "knp-sa"
        sa.mkdir()
        token = self.kubectl(
            "-n", "kube-system", "create", "token", "kube-network-policies", "--duration=48h"
        ).stdout.strip()
        (sa / "token").write_text(token)
        shutil.copy(pki / "ca.crt", sa / "ca.crt")
        (sa / "namespace").write_text("kube-system")
        port = self.server.rsplit(":", 1)[1]
        env = {
            **os.environ,
            "KUBERNETES_SERVICE_HOST": self.host_ip,
            "KUBERNETES_SERVICE_PORT": port,
        }
        script = (
            "mount -t tmpfs -o size=1m ap-live-knp /run && "
            "mkdir -p /run/secrets/kubernetes.io/serviceaccount && "
            'cp "$1"/token "$1"/ca.crt "$1"/namespace /run/secrets/kubernetes.io/serviceaccount/ '
            '&& shift && exec "$@"'
        )
        self.supervisor.start(
            "kube-network-policies",
            [
                "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                str(sa), str(self.tools.binaries["kube-network-policies"]),
                f"--hostname-override={NODE_NAME}", f"--metrics-bind-address=127.0.0.1:{free_port()}",
                "--disable-nri=true", "--netfilter-bug-1766-fix=false", "--v=2",
            ],
            env=env,
        )  # fmt: skip
        wait_for(
            "the policy agent's nft table",
            lambda: "kube-network-policies" in host.run("nft", "list", "tables"),
            60,
            self.supervisor.check_alive,
        )

    # --- queries ----------------------------------------------------------------------

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        assert self.kubeconfig is not None
        done = subprocess.run(
            [str(self.tools.binaries["kubectl"]), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done

    def apply(self, objects: list[dict]) -> str:
        """`kubectl apply` of `objects` as one List; what kubectl printed."""
        items = {"apiVersion": "v1", "kind": "List", "items": objects}
        return self.kubectl("apply", "-f", "-", stdin=json.dumps(items)).stdout

    def wait(self, namespace: str, what: str, condition: str, timeout: int) -> None:
        """`kubectl wait` for `condition` on `what`; past `timeout`, an error with the
        namespace's pods and the object's logs."""
        done = self.kubectl(
            "-n", namespace, "wait", f"--for=condition={condition}", what,
            f"--timeout={timeout}s", check=False, timeout=timeout + 30,
        )  # fmt: skip
        if done.returncode != 0:
            pods = self.kubectl("-n", namespace, "get", "pods", "-o", "wide").stdout
            logs = self.kubectl("-n", namespace, "logs", what, "--all-containers", check=False)
            raise AssertionError(
                f"{what} not {condition}: {done.stderr}\n{pods}\n{logs.stdout}{logs.stderr}"
            )

    def pod_of(self, namespace: str, selector: dict[str, str]) -> dict:
        """The first pod `selector` matches in `namespace`."""
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = self._json("-n", namespace, "get", "pods", "-l", labels).get("items", [])
        assert pods, f"no pod in {namespace} matches {labels}"
        return dict(pods[0])

    def run_to_end(self, namespace: str, pod: dict, timeout: float) -> tuple[str, str]:
        """Create `pod` (restartPolicy Never) and wait for it to finish: its phase
        (Succeeded or Failed) and its log. Past `timeout`, an error with its status."""
        self.apply([pod])
        name = pod["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while True:
            phase = self._json("-n", namespace, "get", "pod", name).get("status", {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                log = self.kubectl("-n", namespace, "logs", name, check=False).stdout
                return str(phase), log
            if time.monotonic() > deadline:
                described = self.kubectl("-n", namespace, "describe", "pod", name, check=False)
                raise AssertionError(f"pod {name} did not finish ({phase}):\n{described.stdout}")
            time.sleep(0.5)

    def bridge_address(self) -> str:
        """This machine's address on the pod bridge (the pods' gateway): where a pod reaches a
        stand-in the suite runs here, without a packet leaving the machine."""
        words = host.run("ip", "-4", "-o", "addr", "show", "dev", BRIDGE).split()
        return words[words.index("inet") + 1].split("/")[0]

    def restricted_namespace(self, name: str) -> None:
        """A new namespace enforcing Pod Security `restricted`, ready for pods: a new
        namespace refuses them until its `default` ServiceAccount exists."""
        self.kubectl("create", "namespace", name)
        self.kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
        deadline = time.monotonic() + 30
        while self.kubectl("-n", name, "get", "sa", "default", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the namespace's default ServiceAccount never came"
            time.sleep(0.2)

    def _json(self, *args: str) -> dict:
        out = self.kubectl(*args, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def _node_ready(self) -> bool:
        conditions = self._json("get", "node", NODE_NAME).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _default_sa(self) -> bool:
        return bool(self._json("-n", "default", "get", "serviceaccount", "default"))

    def _coredns_ready(self) -> bool:
        pods = self._json("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns")
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for p in pods.get("items", [])
            for c in p.get("status", {}).get("conditions", [])
        )

    # --- stop -------------------------------------------------------------------------

    def stop(self) -> None:
        """Everything back as it was, whatever state start() reached."""
        sup = self.supervisor
        if sup is not None and self.kubeconfig is not None and self._alive("kubelet"):
            self._delete_pods()
        if sup is not None:
            sup.stop_all(timeout=20)
        self._kill_shims()
        proxy = self.tools.binaries.get("kube-proxy")
        if proxy and (self.root / "kube-proxy.yaml").exists():
            subprocess.run(
                [str(proxy), "--cleanup", f"--config={self.root / 'kube-proxy.yaml'}"],
                capture_output=True,
                check=False,
            )
        host.run("nft", "delete", "table", *KNP_TABLE.split(), check=False)
        self._netfilter_back()
        host.run("ip", "link", "del", BRIDGE, check=False)
        for name in host.links() - self.links_before:  # the pods' veths the CNI left, only ours
            if name.startswith("veth"):
                host.run("ip", "link", "del", name, check=False)
        for mount in sorted(
            (line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()),
            reverse=True,
        ):
            unmounted = (
                mount.startswith(str(self.root))
                and subprocess.run(["umount", mount], capture_output=True).returncode == 0
            )
            if mount.startswith(str(self.root)) and not unmounted:
                host.run("umount", "-l", mount, check=False)
        self._kill_pod_processes()
        for cgroup in sorted(Path("/sys/fs/cgroup").glob("*/kubepods*"), reverse=True):
            for d in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if d.is_dir():
                    with contextlib.suppress(OSError):
                        d.rmdir()
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        for key, value in self.sysctls_before.items():
            if value is not None and host.sysctl(key) != value:
                host.set_sysctl(key, value)
        host.drop_new_empty_tables(self.nft_before)
        shutil.rmtree(self.root, ignore_errors=True)

    def _alive(self, name: str) -> bool:
        sup = self.supervisor
        return sup is not None and any(n == name and p.poll() is None for n, p in sup.started)

    def _delete_pods(self) -> None:
        namespaces = self._json("get", "namespaces").get("items", [])
        for ns in namespaces:
            name = ns["metadata"]["name"]
            if name not in ("default", "kube-system", "kube-public", "kube-node-lease"):
                self.kubectl("delete", "namespace", name, "--wait=false", check=False)
        self.kubectl("delete", "deploy,rs,ds,sts,job", "--all", "-A", "--wait=false", check=False)
        self.kubectl(
            "delete", "pods", "--all", "-A", "--grace-period=1", "--wait=false", check=False
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.ctr("tasks", "ls", "-q", check=False).strip():
                break
            time.sleep(0.5)
        time.sleep(2)  # the kubelet stops the last sandboxes (CNI DEL) after their tasks

    def _kill_shims(self) -> None:
        marker = f"-address {self.socket}"
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(proc.name), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)

    def _kill_pod_processes(self, timeout: float = 10) -> None:
        """A container still running when the kubelet and its shims are gone (a pod that did not
        end within the teardown's wait) keeps its cgroup: kill what is left in the pods'
        cgroups, so they can be removed."""

        def left() -> set[int]:
            pids: set[int] = set()
            for procs in Path("/sys/fs/cgroup").glob("*/kubepods*/**/cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids |= {int(p) for p in procs.read_text().split()}
            return pids

        deadline = time.monotonic() + timeout
        while (pids := left()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def _netfilter_back(self) -> None:
        """Delete the rules and chains that were not there before start (kube-proxy's, the
        CNI's), table by table; ours (containment) stay until the containment stops."""
        for tool, before_lines in self.iptables_before.items():
            before = _parse_save(before_lines)
            now = _parse_save(host.run(f"{tool}-save").splitlines())
            for table, (chains, rules) in now.items():
                old_chains, old_rules = before.get(table, (set(), []))
                new_chains = {c for c in chains - old_chains if not c.startswith("AP-LIVE-")}
                for rule in rules:
                    words = shlex.split(rule)
                    chain = words[1]
                    if rule in old_rules or chain in new_chains or "AP-LIVE-" in rule:
                        continue
                    host.run(tool, "-w", "-t", table, "-D", *words[1:], check=False)
                for chain in new_chains:
                    host.run(tool, "-w", "-t", table, "-F", chain, check=False)
                for chain in new_chains:
                    host.run(tool, "-w", "-t", table, "-X", chain, check=False)


def _parse_save(lines: list[str]) -> dict[str, tuple[set[str], list[str]]]:
    tables: dict[str, tuple[set[str], list[str]]] = {}
    current = ""
    for line in lines:
        if line.startswith("*"):
            current = line[1:]
            tables[current] = (set(), [])
        elif current and line.startswith(":"):
            tables[current][0].add(line[1:].split()[0])
        elif current and line.startswith("-A "):
            tables[current][1].append(line)
    return tables
