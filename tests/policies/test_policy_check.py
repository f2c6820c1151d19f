"""`python -m infra check` on folders of manifests: what a reviewer would paste into a PR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.offline.cli import main
from infra.offline.manifests import write_dir
from tests.policies import perimeter_fixtures as fx

REPO = Path(__file__).resolve().parents[2]
NS = fx.NS

# Hand-written, the way a hurried change would add them to the rendered folder.
MALICIOUS: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "nodeport": (
        f"""
apiVersion: v1
kind: Service
metadata: {{name: debug, namespace: {NS}}}
spec:
  type: NodePort
  selector: {{app.kubernetes.io/name: mcp-server}}
  ports: [{{port: 8080, nodePort: 30080}}]
""",
        {("service-cluster-ip-only", f"Service/{NS}/debug")},
    ),
    "ingress": (
        f"""
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: tickets, namespace: {NS}}}
spec:
  rules:
    - host: tickets.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: mcp-server-tickets, port: {{number: 8080}}}}}}
""",
        {("no-ingress", f"Ingress/{NS}/tickets")},
    ),
    "secret-in-two-deployments": (
        f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: reporting, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: reporting}}}}
  template:
    metadata: {{labels: {{app: reporting}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 1000, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: report
          image: ghcr.io/example/report:1{fx.DIGEST}
          envFrom: [{{secretRef: {{name: mcp-server-tickets-db-get-ticket}}}}]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          resources: {{requests: {{cpu: 10m, memory: 16Mi}}, limits: {{cpu: 100m, memory: 64Mi}}}}
          livenessProbe: {{exec: {{command: [true]}}}}
          readinessProbe: {{exec: {{command: [true]}}}}
""",
        {
            ("secret-single-reader", f"Secret/{NS}/mcp-server-tickets-db-get-ticket"),
            ("tool-own-role-and-secret", f"Secret/{NS}/mcp-server-tickets-db-get-ticket"),
        },
    ),
    "admin-secret-in-mcp-server": (
        f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: mcp-server-admin, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app.kubernetes.io/name: mcp-server, app.kubernetes.io/instance: mcp-server-admin}}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: mcp-server, app.kubernetes.io/instance: mcp-server-admin}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 1000, seccompProfile: {{type: RuntimeDefault}}}}
      volumes: [{{name: admin, secret: {{secretName: database-admin-support}}}}]
      containers:
        - name: server
          image: ghcr.io/example/mcp-admin:1{fx.DIGEST}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          resources: {{requests: {{cpu: 10m, memory: 16Mi}}, limits: {{cpu: 100m, memory: 64Mi}}}}
          livenessProbe: {{httpGet: {{path: /, port: 8080}}}}
          readinessProbe: {{httpGet: {{path: /, port: 8080}}}}
""",
        {
            ("database-admin-only-provisioner", f"Deployment/{NS}/mcp-server-admin"),
            ("secret-single-reader", f"Secret/{NS}/database-admin-support"),
        },
    ),
    "allow-all-egress": (
        f"""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-all-egress, namespace: {NS}}}
spec:
  podSelector: {{}}
  policyTypes: [Egress]
  egress:
    - {{}}
""",
        {
            ("egress-only-to-allowed-cidrs", f"NetworkPolicy/{NS}/allow-all-egress"),
            ("metadata-endpoint-unreachable", f"NetworkPolicy/{NS}/allow-all-egress"),
        },
    ),
    "privileged-container": (
        f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: node-debugger, namespace: {NS}}}
spec:
  selector: {{matchLabels: {{app: dbg}}}}
  template:
    metadata: {{labels: {{app: dbg}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 1000, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: dbg
          image: ghcr.io/example/dbg:1{fx.DIGEST}
          securityContext:
            privileged: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          resources: {{requests: {{cpu: 10m, memory: 16Mi}}, limits: {{cpu: 100m, memory: 64Mi}}}}
          livenessProbe: {{exec: {{command: [true]}}}}
          readinessProbe: {{exec: {{command: [true]}}}}
""",
        {("no-privileged-containers", f"DaemonSet/{NS}/node-debugger")},
    ),
}


def clean_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    write_dir(fx.environment(), folder)
    return folder


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_clean_folder_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(clean_folder(tmp_path))])
    out = capsys.readouterr().out
    assert code == 0
    assert "pass every rule" in out


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_manifest_is_caught(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = clean_folder(tmp_path)
    text, expected = MALICIOUS[name]
    (folder / f"zz-{name}.yaml").write_text(text)
    code, report = run_json(capsys, str(folder))
    assert code == 1
    found = {(v["rule"], v["resource"]) for v in report["violations"]}
    assert found == expected
    assert report["mandatory"] == len(report["violations"]) > 0


def test_text_output_names_rule_resource_message_and_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = clean_folder(tmp_path)
    (folder / "nodeport.yaml").write_text(MALICIOUS["nodeport"][0])
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"[mandatory] service-cluster-ip-only Service/{NS}/debug: "
        "type NodePort makes the Service reachable from outside the cluster"
    )
    assert out[1].startswith("    hint: Remove spec.type")
    assert "1 violation(s), 1 mandatory, 0 advisory" in out[-1]


def test_only_advisory_findings_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = fx.environment()
    fx.first_container(fx.find(manifests, "Deployment", "sandbox-runner"))["image"] = "a/b:1"
    write_dir(manifests, tmp_path / "m")
    code, report = run_json(capsys, str(tmp_path / "m"))
    assert (code, report["mandatory"], report["advisory"]) == (0, 0, 1)
    code, report = run_json(capsys, str(tmp_path / "m"), "--tier", "prod")
    assert (code, report["tier"], report["mandatory"]) == (1, "prod", 1)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: (p.mkdir(), (p / "a.yaml").write_text("kind: [unclosed\n")), "not valid YAML"),
        (lambda p: (p.mkdir(), (p / "a.yaml").write_text("just: data\n")), "no kind"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("hi")), "no .yaml"),
    ],
)
def test_unreadable_input_exits_2_with_a_clear_message(
    setup, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    setup(folder)
    assert main(["check", str(folder)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_missing_stack_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(tmp_path / "Pulumi.nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_real_entry_point_on_a_folder(tmp_path: Path) -> None:
    folder = clean_folder(tmp_path)
    (folder / "ingress.yaml").write_text(MALICIOUS["ingress"][0])
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "check", str(folder), "--format", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert [(v["rule"], v["resource"]) for v in report["violations"]] == [
        ("no-ingress", f"Ingress/{NS}/tickets")
    ]


# --- loading: what the check reads, and what it refuses ------------------------------------

PRIVILEGED_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: loose}\n"
    "spec: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}\n"
)


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [
        ("kustomization.yaml", "resources: [pod.yaml]\n", "kustomization"),
        ("Kustomization", "resources: [pod.yaml]\n", "kustomization"),
        ("Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.1.0\n", "Helm chart"),
        (
            "k.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
            "Kustomization",
        ),
    ],
)
def test_folders_the_check_cannot_interpret_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, what: str
) -> None:
    write_dir(fx.environment(), tmp_path)
    (tmp_path / name).write_text(text)
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert what in err and "Traceback" not in err


def test_extensions_match_case_insensitively(tmp_path: Path) -> None:
    write_dir(fx.environment(), tmp_path)
    (tmp_path / "EXTRA.YAML").write_text(
        PRIVILEGED_POD.replace("{name: loose}", f"{{name: loose, namespace: {NS}}}")
    )
    assert main(["check", str(tmp_path)]) == 1


def test_namespace_less_objects_land_where_they_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pod.yaml").write_text(PRIVILEGED_POD)
    assert main(["check", str(tmp_path)]) == 2
    assert "--namespace" in capsys.readouterr().err
    code, report = run_json(capsys, str(tmp_path), "--namespace", "team-a")
    assert code == 1
    assert {v["resource"] for v in report["violations"]} >= {"Pod/team-a/loose"}


def test_the_folder_namespace_is_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dir(fx.environment(), tmp_path)
    (tmp_path / "pod.yaml").write_text(PRIVILEGED_POD)
    code, report = run_json(capsys, str(tmp_path))
    assert code == 1
    assert f"Pod/{NS}/loose" in {v["resource"] for v in report["violations"]}
