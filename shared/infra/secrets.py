"""Development secrets, generated once into the state directory (mode 0600) when not given."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

GENERATED = ("AUTH_JWT_SECRET", "INGEST_SECRET_KEY")


def load_or_create(state_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The secrets to pass to services: the environment's own, else the state directory's."""
    path = state_dir / "secrets.env"
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name and value:
                stored[name.strip()] = value.strip()
    changed = False
    for name in GENERATED:
        if name not in stored:
            stored[name] = secrets.token_urlsafe(48)
            changed = True
    if changed:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in stored.items())
    return {name: environ.get(name) or stored[name] for name in GENERATED}
