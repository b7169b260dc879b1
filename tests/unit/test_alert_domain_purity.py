"""The alerts domain stays pure: no event loop, network, database or file I/O imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "services" / "alerts" / "domain"
FORBIDDEN = {"asyncio", "aiohttp", "aiokafka", "asyncpg", "socket", "requests", "httpx"}
MODULES = sorted(
    DOMAIN / f"{name}.py"
    for name in ("alerting", "lifecycle", "routing", "escalation", "care", "hours", "webhook")
)


def imported_roots(tree: ast.Module) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def opens_files(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
        for node in ast.walk(tree)
    )


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_no_io_imports(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    assert imported_roots(tree).isdisjoint(FORBIDDEN)
    assert not opens_files(tree)
