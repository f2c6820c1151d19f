"""The host state the live tier changes, captured before and compared after.

Everything a node leaves behind shows up here: netfilter rules, chains and tables,
interfaces, routes, mounts, sysctls, cgroups and processes. `diff` of a snapshot taken
before start and one taken after teardown must be empty.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
_COUNTERS = re.compile(r"\[\d+:\d+\]")


def run(*argv: str, check: bool = True, stdin: str | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, input=stdin, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def sysctl(key: str) -> str | None:
    path = Path("/proc/sys") / key.replace(".", "/")
    return path.read_text().strip() if path.exists() else None


def set_sysctl(key: str, value: str) -> None:
    (Path("/proc/sys") / key.replace(".", "/")).write_text(value)


def _netfilter(tool: str) -> list[str]:
    lines = []
    for line in run(tool, check=False).splitlines():
        if line.startswith("#"):
            continue
        lines.append(_COUNTERS.sub("", line).rstrip())
    return lines


def links() -> set[str]:
    return {
        line.split(": ")[1].split("@")[0] for line in run("ip", "-o", "link", "show").splitlines()
    }


def _cgroups() -> list[str]:
    root = Path("/sys/fs/cgroup")
    return sorted(str(p) for p in root.glob("*/kubepods*")) + sorted(
        str(p) for p in root.glob("kubepods*")
    )


def _processes(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{proc.name} {cmdline.strip()[:160]}")
    return sorted(found)


@dataclass(frozen=True)
class Snapshot:
    parts: dict[str, list[str]]

    @classmethod
    def capture(cls, marker: str) -> Snapshot:
        """`marker` is a path only this run's processes have on their command line."""
        return cls(
            {
                "iptables": _netfilter("iptables-save"),
                "ip6tables": _netfilter("ip6tables-save"),
                "nft tables": sorted(run("nft", "list", "tables").splitlines()),
                "links": sorted(links()),
                "routes": sorted(run("ip", "route", "show", "table", "all").splitlines()),
                "mounts": sorted(Path("/proc/mounts").read_text().splitlines()),
                "sysctls": [f"{k}={sysctl(k)}" for k in SYSCTLS],
                "cgroups": _cgroups(),
                "processes": _processes(marker),
            }
        )

    def diff(self, after: Snapshot) -> list[str]:
        """What `after` has that this lacks (+) and lacks that this has (-), per part."""
        out = []
        for part, before in self.parts.items():
            now = after.parts.get(part, [])
            out += [f"{part}: + {line}" for line in now if line not in before]
            out += [f"{part}: - {line}" for line in before if line not in now]
        return out


_RULE_WORDS = ("ip ", "ip6 ", "meta ", "ct ", "tcp ", "udp ", "counter", "jump", "goto", "xt ")


def drop_new_empty_tables(before: list[str]) -> None:
    """nft tables that were not there before and hold no rule any more (iptables-nft makes
    `ip filter`, `ip nat`, ... on first use and never removes them)."""
    for line in run("nft", "list", "tables").splitlines():
        if line in before:
            continue
        family, name = line.split()[1:3]
        body = run("nft", "list", "table", family, name, check=False)
        if not any(row.strip().startswith(_RULE_WORDS) for row in body.splitlines()):
            run("nft", "delete", "table", family, name, check=False)
