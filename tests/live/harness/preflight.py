"""What the live node needs of this host, checked before anything is changed: each missing
piece is named (a failure, never a skip)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

COMMANDS = {
    "containerd": "containerd (Debian package containerd)",
    "runc": "runc (Debian package runc)",
    "ctr": "ctr (Debian package containerd)",
    "iptables": "iptables (Debian package iptables)",
    "iptables-save": "iptables-save (Debian package iptables)",
    "ip6tables-save": "ip6tables-save (Debian package iptables)",
    "nft": "nft (Debian package nftables)",
    "ip": "ip (Debian package iproute2)",
    "unshare": "unshare (util-linux)",
    "nsenter": "nsenter (util-linux)",
    "openssl": "openssl",
}
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
CNI_DIR = Path("/usr/lib/cni")
# (option, what it is for); any one option of a tuple is enough.
KERNEL = (
    (("CONFIG_VETH",), "veth pairs (pods and the stand-in namespace)"),
    (("CONFIG_BRIDGE",), "the CNI bridge"),
    (("CONFIG_BRIDGE_NETFILTER",), "netfilter on bridged pod traffic"),
    (("CONFIG_NF_TABLES",), "nftables (the policy agent)"),
    (("CONFIG_NFT_QUEUE", "CONFIG_NETFILTER_XT_TARGET_NFQUEUE"), "NFQUEUE (policy verdicts)"),
    (("CONFIG_OVERLAY_FS",), "overlayfs (containerd's snapshotter)"),
    (("CONFIG_NET_NS",), "network namespaces"),
)


def _kernel_config() -> dict[str, str]:
    path = Path("/proc/config.gz")
    if path.exists():
        text = gzip.decompress(path.read_bytes()).decode()
    else:
        boot = Path(f"/boot/config-{os.uname().release}")
        text = boot.read_text() if boot.exists() else ""
    return dict(line.split("=", 1) for line in text.splitlines() if line.startswith("CONFIG_"))


def missing() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("root: the live node changes netfilter, links and mounts (run as root)")
    problems += [
        f"command {c}: install {what}" for c, what in COMMANDS.items() if not shutil.which(c)
    ]
    problems += [
        f"CNI plugin {p}: install containernetworking-plugins ({CNI_DIR / p})"
        for p in CNI_PLUGINS
        if not (CNI_DIR / p).exists()
    ]
    config = _kernel_config()
    if not config:
        problems.append("kernel config: neither /proc/config.gz nor /boot/config-<release>")
    for options, what in KERNEL if config else ():
        if not any(config.get(o) in ("y", "m") for o in options):
            problems.append(f"kernel {' or '.join(options)}: {what}")
    if config and not Path("/proc/sys/net/bridge").exists():
        problems.append("br_netfilter: /proc/sys/net/bridge is absent (modprobe br_netfilter)")
    if not Path("/sys/fs/cgroup").is_dir() or not any(Path("/sys/fs/cgroup").iterdir()):
        problems.append("cgroups: nothing mounted at /sys/fs/cgroup")
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            problems.append(f"network namespaces: unshare --net fails: {probe.stderr.strip()}")
    if not subprocess.run(
        ["ip", "-4", "route", "show", "default"], capture_output=True, text=True
    ).stdout:
        problems.append("a default route: containment fences off the uplink it names")
    return problems


def require() -> None:
    problems = missing()
    if problems:
        raise RuntimeError(
            "the live tier cannot run on this host; missing:\n  - " + "\n  - ".join(problems)
        )
