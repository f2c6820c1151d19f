"""What a session's code tries, the same in the worker tests (tests/sandbox) and inside the
real sandbox pod (tests/live): every way to reach the environment key, and every way for a
process to outlive its session."""

from __future__ import annotations

ENVIRONMENT_KEY = "sk-ant-envkey-" + "Q7x" * 12
KEY_PREFIX = ENVIRONMENT_KEY[:14]

# The escapes' own processes: a command line (NUL-separated, read as text by -a) that is
# exactly `sleep 1234N`, or the SIGTERM-deaf loop around one. Whole command lines, so no other
# process of the host that merely holds the digits (a PID, a container id) is counted, and
# grep's own never matches.
COUNT = (
    "grep -laE '^(sleep.1234[1-4]|sh.-c.trap .*sleep 1234[1-4].*).$' /proc/[0-9]*/cmdline"
    " 2>/dev/null | wc -l"
)
_MARKER = "sleep 1234"
ESCAPES = [
    # A new session and process group: a group kill would miss it.
    f"setsid {_MARKER}1 >/dev/null 2>&1 < /dev/null &",
    f"nohup {_MARKER}2 >/dev/null 2>&1 &",
    # A double fork: the daemon's parent is gone before the session ends.
    f"( ( {_MARKER}3 >/dev/null 2>&1 & ) & )",
    # Deaf to SIGTERM.
    f"sh -c 'trap \"\" TERM; while :; do {_MARKER}4; done' >/dev/null 2>&1 &",
]
# Started in the background: give them (a loaded machine) a few seconds to show; prints how
# many are running.
ESCAPES_RUNNING = (
    f"for i in $(seq 50); do n=$({COUNT}); [ $n -ge 4 ] && break; sleep 0.2; done; echo $n"
)
# A tool call the deadline must cut off; a marker, so COUNT sees it if it survives.
LONG_CALL = f"{_MARKER}1"


def key_attempts(key_path: str, worker_pid: int | None, search_root: str) -> dict[str, str]:
    """By what each tries: bash commands that must not print the key (or its prefix).
    `worker_pid` is None where the worker's processes are not even visible (the pod): every
    visible process's memory is read instead."""
    mem = (
        "python3 -c \"import sys; f=open(sys.argv[1]+'/mem','rb'); f.seek(0x400000);"
        ' print(f.read(64))"'
    )
    attempts = {
        "the key path": f"cat {key_path}",
        "every mount": "cat /proc/self/mountinfo",
        "every process": "for p in /proc/[0-9]*; do cat $p/environ $p/cmdline; done",
        "a search": (
            f"grep -rsl {KEY_PREFIX} {search_root} --exclude-dir=proc --exclude-dir=sys;"
            f" grep -sl {KEY_PREFIX} /proc/[0-9]*/environ /proc/[0-9]*/cmdline"
        ),
        "the service account": "ls -R /var/run/secrets/kubernetes.io",
        "who am I": "id -u",
    }
    if worker_pid is None:
        attempts["every process's memory"] = f"for p in /proc/[0-9]*; do {mem} $p; done"
    else:
        attempts |= {
            "the worker's environ": f"cat /proc/{worker_pid}/environ",
            "the worker's cmdline": f"cat /proc/{worker_pid}/cmdline",
            "the worker's memory": f"{mem} /proc/{worker_pid}",
            "the worker's root": (
                f"ls -R /proc/{worker_pid}/root/ | head; cat /proc/{worker_pid}/root{key_path}"
            ),
        }
    # `; true`: a refused read is an answer, not a failed call.
    return {what: command + "; true" for what, command in attempts.items()}


def leaked(results: dict[str, str]) -> list[str]:
    """The attempts whose output holds the key's prefix."""
    return [what for what, text in results.items() if KEY_PREFIX in text]
