"""Accepting readings: deduplicate, publish, and answer only once the broker acknowledged.

The receipts of new readings are inserted in a transaction that stays open while the broker
acknowledges; a broker failure rolls them back, so the device's retry is accepted, not counted
as a duplicate. Two concurrent transactions carrying the same reading serialise on its receipt
row.
Each receipt keeps the event as published, so :mod:`services.ingest.redelivery` can publish it
again should the broker lose it.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.ingest.domain.validation import Reading
from services.ingest.publishing import Message, ReadingPublisher
from shared.db import database_errors
from shared.events import ReadingAccepted
from shared.kafka import Headers, cloudevent_headers

SOURCE = "/naervagt/ingest"


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: int
    duplicates: int
    duplicate_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class HeadersTemplate:
    """CloudEvents headers shared by the readings published together (at one moment), and
    where each reading's own id and subject go."""

    headers: Headers
    id_at: int
    subject_at: int


def headers_template() -> HeadersTemplate:
    headers = cloudevent_headers(ReadingAccepted.ce_type, source=SOURCE, subject="", event_id="")
    names = [name for name, _ in headers]
    return HeadersTemplate(headers, names.index("ce_id"), names.index("ce_subject"))


def reading_message(
    template: HeadersTemplate, *, device_id: str, reading_id: str, patient_id: str, event: bytes
) -> Message:
    """The Kafka message of an accepted reading: keyed by patient, with CloudEvents headers.

    The event id is the reading's identity, so a reading published twice is recognisably one.
    """
    headers = template.headers.copy()
    headers[template.id_at] = ("ce_id", f"{device_id}/{reading_id}".encode())
    headers[template.subject_at] = ("ce_subject", reading_id.encode())
    return Message(patient_id.encode(), event, headers)


def event_json(
    device_id: str, patient_id: str, readings: Sequence[Reading], received_at: datetime
) -> list[bytes]:
    """Each reading as the JSON body of a :class:`ReadingAccepted` event.

    Written directly rather than through the model, which costs several times as much on the
    hot path: a reading's own fields are validated already (reading ids are ASCII from a safe
    set; types and units canonical) and the rest is encoded by ``json``.
    """
    prefix = (
        f'{{"device_id":{json.dumps(device_id)},"patient_id":{json.dumps(patient_id)},'
        f'"received_at":"{received_at.isoformat()}","reading_id":"'
    )
    return [
        (
            f'{prefix}{r.reading_id}","type":"{r.type.value}","value":{_value_json(r.value)},'
            f'"unit":"{r.unit}","measured_at":"{r.measured_at.isoformat()}",'
            f'"late":{"true" if r.late else "false"}}}'
        ).encode()
        for r in readings
    ]


def _value_json(value: float | bool | str) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(float(value))


@dataclass(slots=True)
class _Submission:
    device_id: str
    patient_id: str
    readings: Sequence[Reading]
    events: list[bytes]
    answer: asyncio.Future[Outcome]


class Intake:
    """Accepts the readings of many requests together: one transaction and one publish per
    group.

    A request that finds a group slot free is committed at once; under load, requests gather
    while the slots are busy and go together in the next group, so round trips to the
    database and the broker grow with the number of groups, not of requests. A group fails
    or succeeds as one: a broker failure rolls back all of its receipts.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: ReadingPublisher,
        *,
        topic: str,
        acquire_timeout_s: float,
        concurrency: int = 4,
        group_readings: int = 20_000,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._topic = topic
        self._acquire_timeout_s = acquire_timeout_s
        self._concurrency = concurrency
        self._group_readings = group_readings
        self._waiting: deque[_Submission] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def accept(
        self, *, device_id: str, patient_id: str, readings: Sequence[Reading]
    ) -> Outcome:
        """Return once the broker acknowledged every new reading and its receipt is stored;
        raise :class:`~shared.errors.Unavailable` if either the database or the broker is not
        there in time (nothing of the request is then kept)."""
        if not readings:
            return Outcome(0, 0)
        events = event_json(device_id, patient_id, readings, datetime.now(UTC))
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Submission(device_id, patient_id, readings, events, answer))
        self._start_groups()
        # Shielded: the group goes on for the others when a caller goes away.
        return await asyncio.shield(answer)

    async def stop(self) -> None:
        while self._running:
            await asyncio.wait(self._running)

    def _start_groups(self) -> None:
        while self._waiting and len(self._running) < self._concurrency:
            group: list[_Submission] = []
            size = 0
            while self._waiting and (not group or size < self._group_readings):
                submission = self._waiting.popleft()
                group.append(submission)
                size += len(submission.readings)
            task = asyncio.create_task(self._commit(group))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start_groups()

    async def _commit(self, group: list[_Submission]) -> None:
        try:
            outcomes = await self._transaction(group)
        except BaseException as exc:
            for submission in group:
                if not submission.answer.done():
                    submission.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for submission, outcome in zip(group, outcomes, strict=True):
            if not submission.answer.done():
                submission.answer.set_result(outcome)

    async def _transaction(self, group: list[_Submission]) -> list[Outcome]:
        # The first of equal (device, reading) pairs in the group is the one that may be new;
        # rows go in key order, so that concurrent groups lock receipts in the same order.
        first: dict[tuple[str, str], tuple[int, int]] = {}
        for s_index, submission in enumerate(group):
            for r_index, reading in enumerate(submission.readings):
                first.setdefault((submission.device_id, reading.reading_id), (s_index, r_index))
        rows = list(first.items())
        async with (
            database_errors("accepting readings"),
            self._pool.acquire(timeout=self._acquire_timeout_s) as conn,
            conn.transaction(),
        ):
            # COPY encodes rows at half the cost of array parameters.
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming_receipts "
                "(device_id text, reading_id text, patient_id text, measured_at timestamptz, "
                "event bytea) ON COMMIT DELETE ROWS"
            )
            await conn.copy_records_to_table(
                "incoming_receipts",
                records=[
                    (
                        device_id,
                        reading_id,
                        group[s].patient_id,
                        group[s].readings[r].measured_at,
                        group[s].events[r],
                    )
                    for (device_id, reading_id), (s, r) in rows
                ],
            )
            fresh = {
                (r["device_id"], r["reading_id"])
                for r in await conn.fetch(
                    """INSERT INTO reading_receipts
                           (device_id, reading_id, patient_id, measured_at, event)
                       SELECT * FROM incoming_receipts ORDER BY device_id, reading_id
                       ON CONFLICT DO NOTHING RETURNING device_id, reading_id"""
                )
            }
            template = headers_template()
            messages: list[Message] = []
            outcomes: list[Outcome] = []
            for s_index, submission in enumerate(group):
                known: set[str] = set()
                for r_index, reading in enumerate(submission.readings):
                    key = (submission.device_id, reading.reading_id)
                    if key in fresh and first[key] == (s_index, r_index):
                        messages.append(
                            reading_message(
                                template,
                                device_id=submission.device_id,
                                reading_id=reading.reading_id,
                                patient_id=submission.patient_id,
                                event=submission.events[r_index],
                            )
                        )
                    else:
                        known.add(reading.reading_id)
                accepted = len(submission.readings) - len(known)
                outcomes.append(Outcome(accepted, len(known), frozenset(known)))
            await self._publisher.publish(self._topic, messages)
        return outcomes
