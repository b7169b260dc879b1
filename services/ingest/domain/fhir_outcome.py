"""FHIR R4 OperationOutcome issues: building them, and translating model validation errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import ValidationError

__all__ = ["Issue", "Severity", "issues_from_validation_error", "operation_outcome"]

Severity = Literal["fatal", "error", "warning", "information"]

_CHOICE: Final = re.compile(r"\[([^\]]*)\]")
_DATE_TIME_HELP: Final = (
    "is not a valid FHIR dateTime; a measurement needs the date, the time to the second and "
    "a UTC offset, e.g. 2024-05-01T08:30:00+02:00"
)


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue; ``code`` is from the FHIR IssueType value set."""

    severity: Severity
    code: str
    diagnostics: str
    expression: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource as a JSON-ready dict (an empty one says "all is well")."""
    rendered: list[dict[str, Any]] = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.expression is not None:
            entry["expression"] = [issue.expression]
        rendered.append(entry)
    if not rendered:
        rendered.append(
            {"severity": "information", "code": "informational", "diagnostics": "all ok"}
        )
    return {"resourceType": "OperationOutcome", "issue": rendered}


def issues_from_validation_error(error: ValidationError, *, base: str) -> list[Issue]:
    """Translate a fhir.resources validation error into issues with FHIRPath expressions.

    ``base`` is the FHIRPath of the validated resource, e.g. ``Bundle.entry[2].resource``.
    """
    issues: list[Issue] = []
    for detail in error.errors(include_url=False):
        location = detail["loc"]
        expression = base + "".join(
            f"[{part}]" if isinstance(part, int) else f".{_element_name(part)}" for part in location
        )
        kind = detail["type"]
        # fhir.resources reports a missing 1..1 primitive with its own error type.
        if kind in ("missing", "model_field_validation.missing"):
            issues.append(Issue("error", "required", "required element is missing", expression))
        elif kind == "extra_forbidden":
            message = "unknown element: not part of this FHIR R4 resource (check the spelling)"
            issues.append(Issue("error", "structure", message, expression))
        else:
            issues.append(Issue("error", "invalid", _message(detail["msg"]), expression))
    return issues


def _element_name(part: str) -> str:
    if part == "resource_type":
        return "resourceType"
    # fhir.resources names a primitive's extension element "x__ext"; in JSON that is "_x".
    return part.removesuffix("__ext")


def _message(raw: str) -> str:
    text = raw.removeprefix("Value error, ")
    if text.startswith("DateTime value") or text.startswith("Instant value"):
        return _DATE_TIME_HELP
    if text.startswith("Decimal value"):
        return "is not a valid FHIR decimal: send a plain JSON number"
    choice = _CHOICE.search(text)
    if text.startswith("Any of one field value is expected") and choice is not None:
        names = choice.group(1).replace("'", "")
        return f"only one of {names} may be given"
    return text
