"""The scorer: keeps the recent vitals of the patients on its partitions, turns new readings into
explained risk assessments, and reports expected measurements that are overdue.

State is rebuilt from PostgreSQL. When the group gives this instance partitions, the patients of
other partitions are forgotten; a patient's history is read the first time one of their readings
arrives, and the time of each patient's latest reading per type (for overdue measurements) is
read for all patients of the partitions at the next check. So a restarted scorer, or one taking
over a partition, scores against the same history. The scoring itself is `domain.assessment`;
the model's features and inference run in a worker thread, once per consumer batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import murmur2
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from services.alerts.domain.assessment import (
    AssessmentFields,
    ScoringPolicy,
    assess_patient,
    missing_assessment,
    trended_types,
    window_ends,
)
from services.alerts.domain.missing import (
    InvalidCadence,
    Overdue,
    cadences,
    not_yet_reported,
    overdue,
)
from services.alerts.domain.model_risk import ModelRisk, feature_table, risks, window_rows
from services.alerts.domain.personal import TypeFindings, condition_group, findings
from services.alerts.domain.thresholds import InvalidLimits, Limits, patient_limits
from services.alerts.domain.window import InvalidObservation, Observation, PatientVitals, Window
from services.alerts.model.artifact import (
    DeteriorationModel,
    evaluation_path,
    latest_artifact,
    load_model,
)
from services.alerts.settings import AlertsSettings
from shared.db import database_errors
from shared.errors import Unavailable
from shared.events import ReadingAccepted, RiskAssessed
from shared.kafka import ConsumerLoop, Delivery, Publisher, outgoing
from shared.lifecycle import POOL, PUBLISHER
from shared.vitals import VitalType

log = logging.getLogger(__name__)


def _value(type_: str, number: float | None, text: str | None) -> float | bool | str:
    if type_ == VitalType.ON_OXYGEN:
        return bool(number)
    if text is not None:
        return text
    assert number is not None
    return number


@dataclass(frozen=True, slots=True)
class Profile:
    """What the scorer needs to know of a patient beyond their readings."""

    group: str
    spo2_scale: int
    limits: dict[str, Limits]
    cadence_hours: dict[str, float | None]
    loaded_at: float


@dataclass(frozen=True, slots=True)
class LoadedModel:
    model: DeteriorationModel
    alert_threshold: float | None


def load_risk_model(path: Path | None) -> LoadedModel:
    """The model file (the newest shipped one by default) and, if its evaluation made it the
    default, the probability at which it alerts on the real held-out data."""
    source = path if path is not None else latest_artifact()
    model = load_model(source)
    threshold = None
    summary = evaluation_path(source)
    if model.is_default and summary.is_file():
        comparisons = json.loads(summary.read_text(encoding="utf-8")).get("comparisons") or []
        if comparisons and comparisons[0].get("model_threshold") is not None:
            threshold = float(comparisons[0]["model_threshold"])
    return LoadedModel(model, threshold)


@dataclass(frozen=True, slots=True)
class _Window:
    key: str  # unique in the batch, in the batch's order
    patient_id: str
    vitals: PatientVitals
    window: Window
    profile: Profile
    new_types: frozenset[str]
    # The findings kept from the patient's last newest window; None for an earlier window.
    known: dict[str, TypeFindings] | None


def partition_of(patient_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a patient's readings."""
    return int(murmur2(patient_id.encode()) & 0x7FFFFFFF) % partitions


class Scorer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        settings: AlertsSettings,
        model: LoadedModel | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._window = timedelta(minutes=settings.window_minutes)
        self._history = timedelta(days=settings.history_days)
        self._policy = ScoringPolicy(
            baseline_period=timedelta(days=settings.baseline_days),
            baseline_min_readings=settings.baseline_min_readings,
            z_limit=settings.baseline_z_limit,
        )
        self._model = model
        # Batches are small: OpenMP threads cost more than they give when they contend with the
        # event loop (and, on small machines, the broker) for the cores; inference stays on the
        # scoring thread, measured 6x faster under load.
        self._threads = ThreadpoolController() if model is not None else None
        self._top = settings.model_top_features
        self._ttl_s = settings.thresholds_ttl_s
        self._cadence_defaults: dict[str, float | None] = dict(settings.missing_cadence_hours)
        self._lookback = timedelta(days=settings.missing_lookback_days)
        self._clock = clock
        self._vitals: dict[str, PatientVitals] = {}
        self._profiles: dict[str, Profile] = {}
        self._partition: dict[str, int] = {}
        self._last_seen: dict[str, dict[str, datetime]] = {}
        self._found: dict[str, dict[str, TypeFindings]] = {}
        self._assigned: set[int] = set()
        self._partition_count = 0
        # Changes of assignment so far, and the one whose latest reading times have been read.
        self._assignment = 0
        self._caught_up = 0

    # Partition ownership (called by the rebalance listener).

    def own(self, partitions: Iterable[int], *, partition_count: int) -> None:
        """This instance now holds `partitions`: forget every patient of any other partition."""
        self._assigned = set(partitions)
        self._partition_count = partition_count
        self._forget(lambda p: p not in self._assigned)
        self._assignment += 1

    def release(self, partitions: Iterable[int]) -> None:
        """`partitions` go elsewhere: forget their patients."""
        gone = set(partitions)
        self._assigned -= gone
        self._forget(lambda p: p in gone)
        self._assignment += 1

    def _forget(self, drop: Callable[[int], bool]) -> None:
        for patient_id, partition in list(self._partition.items()):
            if drop(partition):
                del self._partition[patient_id]
                self._vitals.pop(patient_id, None)
                self._found.pop(patient_id, None)
                self._profiles.pop(patient_id, None)
                self._last_seen.pop(patient_id, None)

    # Loading state.

    async def _histories(self, patient_ids: Sequence[str]) -> dict[str, PatientVitals]:
        """Each patient's readings, read from PostgreSQL for patients not held yet.

        The result holds its own references: a rebalance may forget a patient while the batch
        is scored. Histories read across a rebalance serve this batch only.
        """
        held = {p: v for p in patient_ids if (v := self._vitals.get(p)) is not None}
        missing = [p for p in patient_ids if p not in held]
        if not missing:
            return held
        assignment = self._assignment
        async with database_errors("loading patient history"):
            rows = await self._pool.fetch(
                """SELECT patient_id, type, value_num, value_text, measured_at FROM readings
                   WHERE patient_id = ANY($1::text[]) AND measured_at > now() - $2::interval
                   ORDER BY measured_at""",
                missing,
                self._history,
            )
        loaded = {p: PatientVitals(retention=self._history) for p in missing}
        for row in rows:
            type_ = row["type"]
            try:
                observation = Observation(
                    type_, _value(type_, row["value_num"], row["value_text"]), row["measured_at"]
                )
            except InvalidObservation:
                continue  # stored but unusable for scoring (a type this scorer cannot read)
            loaded[row["patient_id"]].add(observation)
        if assignment == self._assignment:
            for patient_id, vitals in loaded.items():
                self._vitals[patient_id] = vitals
                for type_ in vitals.types():
                    if (newest := vitals.latest(type_)) is not None:
                        self._saw(patient_id, type_, newest.measured_at)
        return held | loaded

    async def profiles(self, patient_ids: Sequence[str]) -> dict[str, Profile]:
        """Each patient's condition group, SpO2 scale, limits and cadences, at most TTL old."""
        now = self._clock()
        fresh = {
            p: known
            for p in patient_ids
            if (known := self._profiles.get(p)) is not None and now - known.loaded_at < self._ttl_s
        }
        stale = [p for p in patient_ids if p not in fresh]
        if stale:
            async with database_errors("loading patient thresholds"):
                rows = await self._pool.fetch(
                    """SELECT p.patient_id, p.condition, p.spo2_scale, t.limits, t.cadence_hours
                         FROM patients p
                         LEFT JOIN patient_thresholds t ON t.patient_id = p.patient_id
                        WHERE p.patient_id = ANY($1::text[])""",
                    stale,
                )
            found = {row["patient_id"]: row for row in rows}
            for patient_id in stale:
                fresh[patient_id] = self._profiles[patient_id] = _profile(
                    found.get(patient_id), loaded_at=now
                )
        return fresh

    # Scoring readings.

    async def assess(self, deliveries: Sequence[Delivery[ReadingAccepted]]) -> list[RiskAssessed]:
        """Add the readings and score each patient they touched at their newest reading (and
        at earlier ones that window would not cover: see `domain.assessment.window_ends`)."""
        new: dict[str, list[Observation]] = {}
        for d in deliveries:
            e = d.event
            self._partition[e.patient_id] = d.partition
            try:
                observation = Observation(e.type.value, e.value, e.measured_at)
            except InvalidObservation as exc:
                log.warning(
                    "reading cannot be scored",
                    extra={"partition": d.partition, "offset": d.offset, "reason": exc.reason},
                )
                continue
            new.setdefault(e.patient_id, []).append(observation)
        touched = list(new)
        vitals = await self._histories(touched)
        profiles = await self.profiles(touched)
        windows: list[_Window] = []
        for patient_id, observations in new.items():
            held = vitals[patient_id]
            kept = self._found.get(patient_id, {})
            for observation in observations:
                held.add(observation)
                self._saw(patient_id, observation.type, observation.measured_at)
                was = kept.get(observation.type)
                if was is not None and observation.measured_at <= was.at:
                    del kept[observation.type]  # a late reading or a correction changes them
            newest = max(
                (o.measured_at for t in held.types() if (o := held.latest(t)) is not None),
                default=None,
            )
            if newest is None:
                continue
            scale = profiles[patient_id].spo2_scale
            for end, types in window_ends(observations, newest=newest, length=self._window):
                windows.append(
                    _Window(
                        key=f"{len(windows):09d}",
                        patient_id=patient_id,
                        vitals=held,
                        window=held.window(end, self._window, spo2_scale=scale),
                        profile=profiles[patient_id],
                        new_types=types,
                        known=kept if end == newest else None,
                    )
                )
        if not windows:
            return []
        scored, found = await asyncio.to_thread(self._score, windows)
        for w in windows:
            if w.known is not None and self._vitals.get(w.patient_id) is w.vitals:
                self._found[w.patient_id] = found[w.key]  # unless forgotten meanwhile
        return [_event(patient_id, fields) for patient_id, fields in scored]

    def _score(
        self, windows: Sequence[_Window]
    ) -> tuple[list[tuple[str, AssessmentFields]], dict[str, dict[str, TypeFindings]]]:
        """The CPU-bound part, on a worker thread: the model for the whole batch, the findings
        of each window's types, then each window's assessments; also the findings by window
        key. (The model and the findings side by side on two threads were slower: the findings
        hold the GIL.)"""
        found = self._findings(windows)
        return self._assess(windows, self._model_risks(windows), found), found

    def _model_risks(self, windows: Sequence[_Window]) -> dict[str, ModelRisk]:
        """The model's risk of each window by key, for the whole batch in one call."""
        if self._model is None or self._threads is None:
            return {}
        table = feature_table(
            [(w.key, w.vitals, w.window.end, w.window.spo2_scale) for w in windows]
        )
        with self._threads.limit(limits=1, user_api="openmp"):
            predicted = risks(
                self._model.model,
                window_rows(table),
                top=self._top,
                alert_threshold=self._model.alert_threshold,
            )
        return dict(zip(table.patient_ids, predicted, strict=True))

    def _findings(self, windows: Sequence[_Window]) -> dict[str, dict[str, TypeFindings]]:
        """Baselines and slopes of each window's types, reusing what is kept from before."""
        return {
            w.key: findings(
                w.vitals,
                trended_types(w.window),
                end=w.window.end,
                known=w.known,
                baseline_period=self._policy.baseline_period,
                min_readings=self._policy.baseline_min_readings,
            )
            for w in windows
        }

    def _assess(
        self,
        windows: Sequence[_Window],
        model_risk: Mapping[str, ModelRisk],
        found: Mapping[str, Mapping[str, TypeFindings]],
    ) -> list[tuple[str, AssessmentFields]]:
        """Each patient's assessments of their window."""
        return [
            (w.patient_id, fields)
            for w in windows
            for fields in assess_patient(
                w.window,
                w.vitals,
                limits=w.profile.limits,
                group=w.profile.group,
                model=model_risk.get(w.key),
                new_types=w.new_types,
                policy=self._policy,
                found=found[w.key],
            )
        ]

    # Missing measurements.

    async def _catch_up_last_seen(self) -> None:
        """The latest reading time per expected type of every patient of our partitions."""
        count, assigned = self._partition_count, set(self._assigned)
        if not count or not assigned:
            return
        async with database_errors("loading latest readings"):
            patients = await self._pool.fetch("SELECT patient_id FROM patients")
            owned = []
            for row in patients:
                partition = partition_of(row["patient_id"], count)
                if partition in assigned:
                    owned.append(row["patient_id"])
                    self._partition[row["patient_id"]] = partition
            types = set(self._cadence_defaults) | {
                r["type"]
                for r in await self._pool.fetch(
                    "SELECT DISTINCT jsonb_object_keys(cadence_hours) AS type "
                    "FROM patient_thresholds"
                )
            }
            rows = await self._pool.fetch(
                """SELECT o.patient_id, t.type, r.measured_at
                     FROM unnest($1::text[]) AS o(patient_id)
                    CROSS JOIN unnest($2::text[]) AS t(type)
                    CROSS JOIN LATERAL (
                        SELECT measured_at FROM readings
                         WHERE patient_id = o.patient_id AND type = t.type
                           AND measured_at > now() - $3::interval
                         ORDER BY measured_at DESC LIMIT 1) r""",
                owned,
                sorted(types),
                self._lookback,
            )
        for row in rows:
            self._saw(row["patient_id"], row["type"], row["measured_at"])

    def _saw(self, patient_id: str, type_: str, at: datetime) -> None:
        seen = self._last_seen.setdefault(patient_id, {})
        if type_ not in seen or at > seen[type_]:
            seen[type_] = at

    async def report_missing(
        self, publisher: Publisher, *, topic: str, source: str, now: datetime
    ) -> list[RiskAssessed]:
        """Publish a missing-measurement assessment for each patient of our partitions with an
        expected measurement overdue in a period not reported before; return them."""
        if self._caught_up != self._assignment:
            assignment = self._assignment
            await self._catch_up_last_seen()
            self._caught_up = assignment
        candidates = {
            p: dict(seen)
            for p, seen in self._last_seen.items()
            if self._partition.get(p) in self._assigned
        }
        if not candidates:
            return []
        profiles = await self.profiles(list(candidates))
        due: dict[str, list[Overdue]] = {}
        for patient_id, seen in candidates.items():
            items = overdue(
                seen,
                _cadence(self._cadence_defaults, profiles[patient_id], patient_id),
                now=now,
                give_up_after=self._lookback,
            )
            if items:
                due[patient_id] = items
        if not due:
            return []
        events: list[RiskAssessed] = []
        async with (
            database_errors("recording missing measurements"),
            self._pool.acquire() as conn,
            conn.transaction(),
        ):
            reported: dict[str, dict[str, datetime]] = {}
            for row in await conn.fetch(
                "SELECT patient_id, type, due_at FROM missing_measurement_notices "
                "WHERE patient_id = ANY($1::text[])",
                list(due),
            ):
                reported.setdefault(row["patient_id"], {})[row["type"]] = row["due_at"]
            fresh = {
                p: new
                for p, items in due.items()
                if (new := not_yet_reported(items, reported.get(p, {})))
            }
            if not fresh:
                return []
            # Another instance may report the same period at the same moment: only the rows
            # this transaction moved forward are ours to publish.
            won = {
                (r["patient_id"], r["type"])
                for r in await conn.fetch(
                    """INSERT INTO missing_measurement_notices AS n (patient_id, type, due_at)
                       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
                       ON CONFLICT (patient_id, type) DO UPDATE
                          SET due_at = EXCLUDED.due_at, reported_at = now()
                        WHERE n.due_at < EXCLUDED.due_at
                       RETURNING patient_id, type""",
                    [p for p, items in fresh.items() for _ in items],
                    [o.type for items in fresh.values() for o in items],
                    [o.due_at for items in fresh.values() for o in items],
                )
            }
            for patient_id, items in fresh.items():
                mine = [o for o in items if (patient_id, o.type) in won]
                if mine:
                    events.append(_event(patient_id, missing_assessment(mine, now=now)))
            # Published before the notices commit: a failed publish leaves them unreported.
            await publisher.publish(
                [
                    outgoing(topic, e.patient_id, e, source=source, subject=e.assessment_id)
                    for e in events
                ]
            )
        return events


@functools.cache
def _group_limits(group: str) -> dict[str, Limits]:
    return patient_limits(group)


def _profile(row: Mapping[str, Any] | None, *, loaded_at: float) -> Profile:
    if row is None:  # readings of a patient the care records do not know (yet)
        return Profile("default", 1, _group_limits("default"), {}, loaded_at)
    group = condition_group(row["condition"])
    overrides = row["limits"] or {}
    try:
        limits = patient_limits(group, overrides) if overrides else _group_limits(group)
    except InvalidLimits as exc:
        # Valid when stored; only a change of the group's defaults can make them clash.
        log.warning(
            "stored reference ranges no longer fit the defaults; using the defaults",
            extra={"patient_id": row["patient_id"], "error": str(exc)},
        )
        limits = _group_limits(group)
    return Profile(group, row["spo2_scale"], limits, dict(row["cadence_hours"] or {}), loaded_at)


def _cadence(
    defaults: Mapping[str, float | None], profile: Profile, patient_id: str
) -> dict[str, timedelta]:
    try:
        return cadences(defaults, profile.cadence_hours)
    except InvalidCadence as exc:
        log.warning(
            "stored cadence unusable; using the defaults",
            extra={"patient_id": patient_id, "error": str(exc)},
        )
        return cadences(defaults, {})


def _event(patient_id: str, fields: AssessmentFields) -> RiskAssessed:
    news2, model = fields.news2, fields.model
    # One validation of the whole body (rather than one per nested part) keeps this cheap.
    return RiskAssessed.model_validate(
        {
            "assessment_id": str(uuid.uuid4()),
            "patient_id": patient_id,
            "kind": fields.kind,
            "window_end": fields.window_end,
            "severity": fields.severity,
            "news2": None
            if news2 is None
            else {
                "total": news2.total,
                "components": news2.components,
                "single_parameter_3": news2.single_parameter_3,
            },
            "values": {t: {"value": v, "measured_at": at} for t, (v, at) in fields.values.items()},
            "missing": list(fields.missing),
            "model": None
            if model is None
            else {
                "version": model.version,
                "probability": model.probability,
                "top_features": list(model.top_features),
            },
            "reasons": list(fields.reasons),
        }
    )


class PartitionOwnership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the scorer which partitions of the readings topic it holds."""

    def __init__(self, scorer: Scorer, consumer: AIOKafkaConsumer, *, topic: str) -> None:
        self._scorer = scorer
        self._consumer = consumer
        self._topic = topic

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._scorer.release(tp.partition for tp in revoked if tp.topic == self._topic)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        count = len(self._consumer.partitions_for_topic(self._topic) or ())
        self._scorer.own(
            (tp.partition for tp in assigned if tp.topic == self._topic), partition_count=count
        )


def scorer_loop(
    settings: AlertsSettings, *, scorer: Scorer, publisher: Publisher, source: str
) -> ConsumerLoop[ReadingAccepted]:
    """The scorer's consumer of the readings topic, publishing to the risk topic.

    The consumer is subscribed here rather than made by `shared.kafka.make_consumer`, so that the
    scorer hears about rebalances; its other options are `make_consumer`'s.
    """
    kafka, topics = settings.kafka, settings.topics
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=settings.scorer_group,
        client_id="alerts-scorer",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        request_timeout_ms=max(kafka.request_timeout_ms, kafka.session_timeout_ms + 5000),
        max_poll_records=2000,
    )
    consumer.subscribe(
        [topics.readings], listener=PartitionOwnership(scorer, consumer, topic=topics.readings)
    )

    async def handle(deliveries: list[Delivery[ReadingAccepted]]) -> None:
        assessments = await scorer.assess(deliveries)
        await publisher.publish(
            [
                outgoing(topics.risk, a.patient_id, a, source=source, subject=a.assessment_id)
                for a in assessments
            ]
        )

    return ConsumerLoop(
        consumer,
        model=ReadingAccepted,
        handle=handle,
        publisher=publisher,
        deadletter_topic=topics.deadletter,
        name="scorer",
    )


SCORER = web.AppKey("scorer", Scorer)


def scoring_ctx(
    settings: AlertsSettings, *, source: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Load the model, make the scorer (`app[SCORER]`) and run the missing-measurement check."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        model = await asyncio.to_thread(load_risk_model, settings.model_path)
        log.info(
            "deterioration model loaded",
            extra={"version": model.model.version, "is_default": model.model.is_default},
        )
        scorer = app[SCORER] = Scorer(app[POOL], settings=settings, model=model)
        publisher = app[PUBLISHER]

        async def check() -> None:
            while True:
                await asyncio.sleep(settings.missing_check_s)
                try:
                    await scorer.report_missing(
                        publisher,
                        topic=settings.topics.risk,
                        source=source,
                        now=datetime.now(UTC),
                    )
                except Unavailable as exc:
                    log.warning("missing-measurement check waiting", extra={"error": exc.message})
                except Exception:
                    log.exception("missing-measurement check failed; trying again")

        task = asyncio.create_task(check(), name="missing-measurements")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
