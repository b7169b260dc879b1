"""The ingest domain stays pure: no event loop, network, database or file I/O imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "services" / "ingest" / "domain"
FORBIDDEN = {"asyncio", "aiohttp", "aiokafka", "asyncpg", "socket", "requests", "httpx"}
MODULES = sorted(p for p in DOMAIN.glob("*.py") if p.stem != "__init__")


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_domain_modules_exist() -> None:
    assert {p.stem for p in MODULES} >= {
        "validation",
        "units",
        "plausibility",
        "fhir",
        "fhir_search",
        "reading_query",
        "replay",
    }


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_no_io_imports(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    assert imported_roots(source).isdisjoint(FORBIDDEN)
    assert "open(" not in source
