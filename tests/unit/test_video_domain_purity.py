"""The video domain stays pure: no event loop, web framework, driver or file and network I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "services" / "video" / "domain"
FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "aiokafka",
    "asyncpg",
    "socket",
    "ssl",
    "os",
    "pathlib",
    "subprocess",
    "logging",
    "time",
}


@pytest.mark.parametrize("module", sorted(p.name for p in DOMAIN.glob("*.py")))
def test_domain_module_imports_nothing_impure(module: str) -> None:
    tree = ast.parse((DOMAIN / module).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "open", f"{module} opens a file"

    assert imported & FORBIDDEN == set()
