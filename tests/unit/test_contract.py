"""The contract layer: a leaf that every layer imports, shipped to the pack as a generated
copy held byte-equal here (a hand edit of either side fails until `make contract`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "infra" / "contract"
PACK_COPY = REPO / "policies" / "rules" / "contract"


def _modules(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.py"))}


def test_the_pack_holds_the_contract_byte_for_byte() -> None:
    source, copy = _modules(CONTRACT), _modules(PACK_COPY)
    assert sorted(copy) == sorted(source), "run `make contract`: the file sets differ"
    differ = [name for name in source if source[name] != copy[name]]
    assert differ == [], f"run `make contract`: policies/rules/contract/ differs in {differ}"


@pytest.mark.parametrize("module", sorted(p.name for p in CONTRACT.glob("*.py")))
def test_a_contract_module_imports_the_standard_library_and_itself_only(module: str) -> None:
    """Absolute imports of `infra` or `policies` would break the pack's copy; a third-party
    one would need the pack's virtualenv and the program's to agree."""
    tree = ast.parse((CONTRACT / module).read_text())
    outside = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        outside += [root for root in roots if root not in sys.stdlib_module_names]
    assert outside == [], f"{module} imports {outside}"


def test_loading_the_config_loads_no_rule() -> None:
    """The config validates addresses and credential shapes through the contract alone: it
    loaded the whole rules package before."""
    probe = (
        "import sys, infra.pure.config, infra.pure.naming, infra.pure.network; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'policies'))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]", found.stdout


def test_the_rules_and_the_program_read_the_same_facts() -> None:
    """Both copies, imported side by side, hold equal values (a generated copy, not a fork)."""
    from infra.contract import addresses, kinds, names
    from policies.rules.contract import (
        addresses as pack_addresses,
        kinds as pack_kinds,
        names as pack_names,
    )

    assert addresses.METADATA_FORMS == pack_addresses.METADATA_FORMS
    assert kinds.CLUSTER_SCOPED == pack_kinds.CLUSTER_SCOPED
    assert names.CREDENTIAL_NAME_FORMS == pack_names.CREDENTIAL_NAME_FORMS
