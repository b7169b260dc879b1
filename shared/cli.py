"""The ``naervagt`` command: run the platform and operate it.

naervagt up [--demo]                 start everything (embedded broker/database if unset)
naervagt migrate                     apply database migrations
naervagt topics [create|list]        create or list the Kafka topics
naervagt device add --patient ID     register a device (prints its id and secret once)
naervagt device list|rotate|revoke   manage devices
naervagt token --role R --org O --sub NAME   a development clinician token
naervagt model train|evaluate        the deterioration model
naervagt score --input IN --output OUT       NEWS2 and risk for a CSV of readings
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp

from shared import db, migrate
from shared.auth import ROLES, Principal, issue_token
from shared.infra import secrets
from shared.kafka import ensure_topics, list_topics
from shared.settings import KafkaSettings, PlatformSettings, TopicSettings

# Subcommands implemented by a service's own offline tooling, imported only when used.
DELEGATED = {
    "model": "services.alerts.model.commands:model_main",
    "score": "services.alerts.model.commands:score_main",
    "care": "services.alerts.care_api:care_main",
}


def _jwt_secret(settings: PlatformSettings) -> str:
    return secrets.load_or_create(settings.state_dir, os.environ)["AUTH_JWT_SECRET"]


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is not set (naervagt up starts an embedded database by itself)")
    return url


async def _migrate() -> int:
    conn = await db.connect(_database_url())
    try:
        applied = await migrate.apply(conn)
    finally:
        await conn.close()
    print(f"applied {len(applied)} migration(s): {[m.version for m in applied]}")
    return 0


async def _topics(action: str) -> int:
    kafka = KafkaSettings()
    if action == "create":
        created = await ensure_topics(kafka, TopicSettings().all())
        print(f"created: {created or 'none (all exist)'}")
    for name in await list_topics(kafka):
        print(name)
    return 0


async def _device(args: argparse.Namespace, settings: PlatformSettings) -> int:
    token = issue_token(_jwt_secret(settings), Principal("naervagt-cli", "operator", "platform"))
    headers = {"Authorization": f"Bearer {token}"}
    base = args.ingest_url.rstrip("/") + "/v1/admin/devices"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        if args.action == "add":
            body: dict[str, Any] = {"patient_id": args.patient, "kind": args.kind}
            if args.model:
                body["model"] = args.model
            if args.serial:
                body["serial"] = args.serial
            request = session.post(base, json=body, headers=headers)
        elif args.action == "list":
            params = {"patient_id": args.patient} if args.patient else {}
            request = session.get(base, params=params, headers=headers)
        else:
            request = session.post(f"{base}/{args.device_id}/{args.action}", headers=headers)
        async with request as response:
            document = await response.json(content_type=None)
            if response.status >= 400:
                print(json.dumps(document, indent=2), file=sys.stderr)
                return 1
    if args.action in ("add", "rotate"):
        print(f"device_id: {document['device_id']}")
        print(f"secret:    {document['secret']}")
        print("The secret is shown only this once; store it in the device now.")
    else:
        print(json.dumps(document, indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naervagt", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the whole platform")
    up.add_argument("--demo", action="store_true", help="seed demo data and simulate devices")
    sub.add_parser("migrate", help="apply database migrations")
    topics = sub.add_parser("topics", help="create or list topics")
    topics.add_argument("action", nargs="?", choices=["create", "list"], default="list")
    device = sub.add_parser("device", help="manage devices through the ingest admin API")
    device.add_argument("action", choices=["add", "list", "rotate", "revoke"])
    device.add_argument("device_id", nargs="?")
    device.add_argument("--patient")
    device.add_argument("--kind", default="home-gateway")
    device.add_argument("--model")
    device.add_argument("--serial")
    device.add_argument(
        "--ingest-url", default=os.environ.get("NAERVAGT_INGEST_URL", "http://localhost:8081")
    )
    token = sub.add_parser("token", help="issue a development clinician token")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--org", required=True)
    token.add_argument("--sub", required=True)
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in DELEGATED:
        module, _, function = DELEGATED[args_list[0]].partition(":")
        result: int = getattr(importlib.import_module(module), function)(args_list[1:])
        return result
    args = _parser().parse_args(args_list)
    settings = PlatformSettings()
    if args.command == "up":
        from shared import logs
        from shared.infra.launcher import up

        logs.configure("naervagt")
        return asyncio.run(up(settings, demo=args.demo))
    if args.command == "migrate":
        return asyncio.run(_migrate())
    if args.command == "topics":
        return asyncio.run(_topics(args.action))
    if args.command == "device":
        if args.action == "add" and not args.patient:
            _parser().error("device add needs --patient")
        if args.action in ("rotate", "revoke") and not args.device_id:
            _parser().error(f"device {args.action} needs a DEVICE_ID")
        return asyncio.run(_device(args, settings))
    if args.command == "token":
        principal = Principal(args.sub, args.role, args.org)
        print(issue_token(_jwt_secret(settings), principal, ttl_s=args.ttl))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
