"""The README's from-scratch server is real: under 30 lines, and the runtime takes it as is."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from servers.runtime.app import Runtime
from servers.runtime.contract import Contract, ContractError
from tests.conftest import REPO_ROOT
from tests.servers.harness import write_secret


def readme_server(tmp_path: Path) -> ModuleType:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("### Writing a server: the runtime", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "the README's server example is gone"
    lines = code[1].splitlines()
    assert len(lines) < 30, f"{len(lines)} lines"
    path = tmp_path / "readme_server.py"
    path.write_text(code[1])
    spec = importlib.util.spec_from_file_location("readme_server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("readme_server", None)
    spec.loader.exec_module(module)
    return module


def contract(tmp_path: Path, tools: str) -> Contract:
    write_secret(tmp_path / "token", {"token": "t"})
    write_secret(
        tmp_path / "db", {"get_order/username": "mcp_orders_get_order", "get_order/password": "p"}
    )
    return Contract.from_environ(
        {
            "MCP_SERVER_NAME": "orders",
            "MCP_LISTEN_ADDR": ":8080",
            "MCP_PATH": "/mcp",
            "MCP_TOOLS": tools,
            "MCP_BEARER_TOKEN_DIR": str(tmp_path / "token"),
            "MCP_DATABASE_CREDENTIALS_DIR": str(tmp_path / "db"),
            "DATABASE_HOST": "127.0.0.1",
            "DATABASE_NAME": "shop",
        }
    )


def test_the_readme_server_is_accepted_for_its_granted_tool(tmp_path: Path) -> None:
    runtime = readme_server(tmp_path).runtime
    assert isinstance(runtime, Runtime) and runtime.tools == ("get_order",)
    assert list(runtime.check(contract(tmp_path, "get_order"))) == ["get_order"]
    with pytest.raises(ContractError, match="grants get_order, which has no handler"):
        Runtime("empty").check(contract(tmp_path, "get_order"))
