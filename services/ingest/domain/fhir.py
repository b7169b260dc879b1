"""FHIR R4 (application/fhir+json) requests to native reading items, and results back to FHIR.

A request is one Observation or a Bundle of type batch, transaction or collection. Each entry is
treated as one unit: if any of its readings is rejected, none of them is accepted, and a
transaction is accepted whole or not at all. Use::

    request = parse_fhir(document)
    readings, rejections = validate_batch(request.native_items(), patient_id=..., now=...)
    settled = settle(request, readings=readings, rejections=rejections)
    # store/publish settled.readings; answer settled.http_status with settled.body, or, knowing
    # which readings were already stored and where each now lives:
    status, body = respond(request, settled.results, duplicates=known, location=url_of)

Models come from ``fhir.resources.R4B``: FHIR 4.3, identical to R4 (4.0.1) for Observation,
Bundle and OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from services.ingest.domain.fhir_observation import MappedItem, map_observation
from services.ingest.domain.fhir_outcome import Issue, operation_outcome
from services.ingest.domain.validation import (
    DUPLICATE_READING_ID,
    ITEM,
    FieldError,
    Reading,
    Rejection,
    is_reading_id,
)

__all__ = [
    "CREATED",
    "FHIR_CONTENT_TYPE",
    "INVALID",
    "NOT_SCORED",
    "BundleEntry",
    "EntryResult",
    "FhirRequest",
    "Settled",
    "batch_response",
    "entry_results",
    "issues_for_rejection",
    "parse_fhir",
    "respond",
    "settle",
]

FHIR_CONTENT_TYPE: Final = "application/fhir+json"
CREATED: Final = "201 Created"
INVALID: Final = "400 Bad Request"
NOT_SCORED: Final = "200 OK"

_BUNDLE_TYPES: Final = ("batch", "transaction", "collection")
_METHODS: Final = ("POST", "PUT")


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One input entry (the lone Observation is entry 0) and what it maps to."""

    index: int
    path: str
    """FHIRPath of the resource: ``Observation`` or ``Bundle.entry[3].resource``."""
    items: tuple[MappedItem, ...] = ()
    issues: tuple[Issue, ...] = ()
    not_scored: str | None = None

    @property
    def failed(self) -> bool:
        return any(issue.is_error for issue in self.issues)


@dataclass(frozen=True, slots=True)
class FhirRequest:
    bundle_type: str | None
    """None for a lone Observation."""
    entries: tuple[BundleEntry, ...]
    issues: tuple[Issue, ...] = ()
    """About the document as a whole; any error here rejects the whole request."""

    @property
    def failed(self) -> bool:
        return any(issue.is_error for issue in self.issues)

    @property
    def atomic(self) -> bool:
        return self.bundle_type == "transaction"

    def native_items(self) -> list[dict[str, object]]:
        """Items to pass to ``validate_batch``, in entry order; failed entries contribute none."""
        return [mapped.item for _, mapped in self.mapped_items()]

    def mapped_items(self) -> list[tuple[BundleEntry, MappedItem]]:
        """The items behind ``native_items()``, each with its entry."""
        if self.failed:
            return []
        return [(entry, item) for entry in self.entries if not entry.failed for item in entry.items]


def parse_fhir(document: object) -> FhirRequest:
    """Map a decoded application/fhir+json body; never raises for bad input."""
    if not isinstance(document, Mapping):
        message = "the body must be a FHIR resource: a JSON object with a resourceType"
        return FhirRequest(None, (), (Issue("fatal", "structure", message),))
    resource_type = document.get("resourceType")
    if resource_type == "Observation":
        mapping = map_observation(document, path="Observation")
        entry = BundleEntry(0, "Observation", mapping.items, mapping.issues, mapping.not_scored)
        return FhirRequest(None, (entry,))
    if resource_type == "Bundle":
        return _parse_bundle(document)
    message = f"expected an Observation or a Bundle, got resourceType {resource_type!r}"
    return FhirRequest(None, (), (Issue("fatal", "not-supported", message),))


def _parse_bundle(bundle: Mapping[str, Any]) -> FhirRequest:
    bundle_type = bundle.get("type")
    if bundle_type not in _BUNDLE_TYPES:
        message = f"Bundle.type must be one of {', '.join(_BUNDLE_TYPES)}, got {bundle_type!r}"
        return FhirRequest(None, (), (Issue("fatal", "not-supported", message, "Bundle.type"),))
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        message = "Bundle.entry must be an array"
        return FhirRequest(bundle_type, (), (Issue("fatal", "structure", message, "Bundle.entry"),))
    references = _bundle_references(raw_entries)
    entries = tuple(
        _parse_entry(index, raw, bundle_type=bundle_type, references=references)
        for index, raw in enumerate(raw_entries)
    )
    return FhirRequest(bundle_type, entries)


def _bundle_references(raw_entries: Sequence[object]) -> frozenset[str]:
    """References by which another entry can be named: its fullUrl and Observation/{id}."""
    names: set[str] = set()
    for raw in raw_entries:
        if not isinstance(raw, Mapping):
            continue
        full_url = raw.get("fullUrl")
        if isinstance(full_url, str):
            names.add(full_url)
        resource = raw.get("resource")
        if isinstance(resource, Mapping) and isinstance(resource.get("id"), str):
            names.add(f"{resource.get('resourceType')}/{resource['id']}")
    return frozenset(names)


def _parse_entry(
    index: int, raw: object, *, bundle_type: str, references: frozenset[str]
) -> BundleEntry:
    entry_path = f"Bundle.entry[{index}]"
    path = entry_path + ".resource"
    if not isinstance(raw, Mapping):
        issue = Issue("error", "structure", "each entry must be a JSON object", entry_path)
        return BundleEntry(index, path, issues=(issue,))
    request = raw.get("request")
    if bundle_type != "collection" and isinstance(request, Mapping):
        method = request.get("method")
        if method not in _METHODS:
            message = f"only {' and '.join(_METHODS)} of Observations are supported, got {method!r}"
            issue = Issue("error", "not-supported", message, entry_path + ".request.method")
            return BundleEntry(index, path, issues=(issue,))
    resource = raw.get("resource")
    if not isinstance(resource, Mapping):
        issue = Issue("error", "required", "each entry needs a resource", path)
        return BundleEntry(index, path, issues=(issue,))
    if resource.get("resourceType") != "Observation":
        reason = (
            f"only Observation resources are processed; this {resource.get('resourceType')!r} "
            "was ignored"
        )
        return BundleEntry(index, path, not_scored=reason)
    full_url = raw.get("fullUrl")
    fallback = None
    if isinstance(full_url, str) and is_reading_id(full_url):
        fallback = (full_url, entry_path + ".fullUrl")
    own = _own_names(raw, resource)
    mapping = map_observation(
        resource,
        path=path,
        fallback_id=fallback,
        in_bundle=lambda reference: reference in references and reference not in own,
    )
    return BundleEntry(index, path, mapping.items, mapping.issues, mapping.not_scored)


def _own_names(raw: Mapping[str, Any], resource: Mapping[str, Any]) -> frozenset[str]:
    names = {raw.get("fullUrl"), f"Observation/{resource.get('id')}"}
    return frozenset(name for name in names if isinstance(name, str))


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryResult:
    index: int
    status: str
    """``201 Created``, ``400 Bad Request`` or ``200 OK`` (accepted but not scored)."""
    issues: tuple[Issue, ...]
    readings: tuple[Reading, ...] = ()


@dataclass(frozen=True, slots=True)
class Settled:
    readings: list[Reading]
    """The readings to store and publish."""
    http_status: int
    body: dict[str, Any]
    results: tuple[EntryResult, ...] = ()
    """Per entry, for :func:`respond`; empty when the whole request was refused."""


_HTTP_STATUS: Final = {CREATED: 201, INVALID: 400, NOT_SCORED: 200}
_ISSUE_CODE_BY_FIELD: Final = {
    "type": "code-invalid",
    "unit": "code-invalid",
    "value": "value",
    "measured_at": "value",
    "patient_id": "forbidden",
}


def issues_for_rejection(rejection: Rejection, mapped: MappedItem) -> list[Issue]:
    """Native field errors of a mapped item as OperationOutcome issues with FHIRPaths."""
    return [_issue_for(error, mapped) for error in rejection.errors]


def _issue_for(error: FieldError, mapped: MappedItem) -> Issue:
    expression = mapped.paths.get(error.field) or mapped.paths.get(ITEM)
    if error.message.startswith(DUPLICATE_READING_ID):
        message = "an earlier entry of this request has the same reading id " + repr(
            mapped.item.get("reading_id")
        )
        return Issue("error", "duplicate", message, expression)
    code = _ISSUE_CODE_BY_FIELD.get(error.field, "invalid")
    return Issue("error", code, error.message, expression)


def entry_results(
    request: FhirRequest, *, readings: Sequence[Reading], rejections: Sequence[Rejection]
) -> list[EntryResult]:
    """One result per input entry, from ``validate_batch`` run on ``request.native_items()``."""
    mapped = request.mapped_items()
    if len(readings) + len(rejections) != len(mapped):
        raise ValueError("readings and rejections must come from request.native_items()")
    by_item: dict[int, Reading | Rejection] = {r.index: r for r in rejections}
    accepted = iter(readings)
    # validate_batch keeps input order, so accepted readings fill the positions not rejected.
    for position in range(len(mapped)):
        if position not in by_item:
            by_item[position] = next(accepted)
    per_entry: dict[int, list[tuple[MappedItem, Reading | Rejection]]] = {}
    for position, (entry, item) in enumerate(mapped):
        per_entry.setdefault(entry.index, []).append((item, by_item[position]))

    results: list[EntryResult] = []
    for entry in request.entries:
        notes = tuple(issue for issue in entry.issues if not issue.is_error)
        if entry.failed:
            results.append(EntryResult(entry.index, INVALID, entry.issues))
            continue
        outcomes = per_entry.get(entry.index, [])
        problems = [
            issue
            for item, outcome in outcomes
            if isinstance(outcome, Rejection)
            for issue in issues_for_rejection(outcome, item)
        ]
        if problems:
            results.append(EntryResult(entry.index, INVALID, (*problems, *notes)))
        elif outcomes:
            accepted_here = tuple(o for _, o in outcomes if isinstance(o, Reading))
            count = len(accepted_here)
            done = Issue(
                "information",
                "informational",
                f"accepted as {count} reading{'s' if count != 1 else ''}",
                entry.path,
            )
            results.append(EntryResult(entry.index, CREATED, (done, *notes), accepted_here))
        else:
            reason = entry.not_scored or "nothing to score"
            info = Issue("information", "informational", f"not scored: {reason}", entry.path)
            results.append(EntryResult(entry.index, NOT_SCORED, (info, *notes)))
    return results


def batch_response(request: FhirRequest, results: Sequence[EntryResult]) -> dict[str, Any]:
    """A batch-response (or transaction-response) Bundle with one entry per input entry."""
    response_type = "transaction-response" if request.atomic else "batch-response"
    body: dict[str, Any] = {"resourceType": "Bundle", "type": response_type}
    if results:  # FHIR JSON has no empty arrays
        body["entry"] = [
            {"response": {"status": result.status, "outcome": operation_outcome(result.issues)}}
            for result in results
        ]
    return body


def settle(
    request: FhirRequest, *, readings: Sequence[Reading], rejections: Sequence[Rejection]
) -> Settled:
    """Decide which readings are accepted and the response to send.

    A lone Observation answers 201 (or 200 when not scored) with an OperationOutcome, or 400;
    a batch or collection answers 200 with a batch-response Bundle; a transaction with any
    failed entry answers 400 with one OperationOutcome and accepts nothing.
    """
    if request.failed:
        return Settled([], 400, operation_outcome(request.issues))
    results = entry_results(request, readings=readings, rejections=rejections)
    kept = [reading for result in results for reading in result.readings]
    if request.atomic and any(result.status == INVALID for result in results):
        issues = [i for result in results if result.status == INVALID for i in result.issues]
        return Settled([], 400, operation_outcome(issues))
    status, body = respond(request, results)
    return Settled(kept, status, body, tuple(results))


def respond(
    request: FhirRequest,
    results: Sequence[EntryResult],
    *,
    duplicates: Collection[str] = frozenset(),
    location: Callable[[Reading], str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body once the accepted readings are stored.

    An entry whose readings were all received before (their ids are in ``duplicates``) answers
    ``200 OK`` instead of ``201 Created``; ``location`` names where an entry's first reading can
    be found, for ``Bundle.entry.response.location``.
    """
    final = [_known(result, duplicates) for result in results]
    if request.bundle_type is None:
        (result,) = final
        return _HTTP_STATUS[result.status], operation_outcome(result.issues)
    body = batch_response(request, final)
    if location is not None:
        for entry, result in zip(body.get("entry", ()), final, strict=True):
            if result.readings:
                entry["response"]["location"] = location(result.readings[0])
    return 200, body


def _known(result: EntryResult, duplicates: Collection[str]) -> EntryResult:
    if not result.readings or not all(r.reading_id in duplicates for r in result.readings):
        return result
    note = Issue("information", "duplicate", "received before; not stored again")
    return EntryResult(result.index, NOT_SCORED, (note, *result.issues[1:]), result.readings)
