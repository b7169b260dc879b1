"""Routing: which responders an alert goes to, in escalation order, for a patient, a severity
and a moment on the Danish clock. Pure: the care structure and the policy are values.

Default chains (ack timeouts come from :class:`RoutingPolicy`):

==================== =========================================================
severity or kind     chain
==================== =========================================================
high                 advise 112, acute team, out-of-hours service
medium               acute team, out-of-hours service
low-medium           acute team, out-of-hours — or, with ``low_medium_to="gp"``,
                     as low
low, trend           GP while the practice is open, then acute team;
                     otherwise out-of-hours service, then acute team
missing_measurement  the acute team's task list
==================== =========================================================

A responder that cannot be found is left out with a warning for the operator; when no
responder at all is known the policy's fallback step is used, so the chain is never empty.

Example::

    >>> route(patient, severity_or_kind="low", at=now, care=care, policy=RoutingPolicy())
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from services.alerts.domain.care import CareStructure, OutOfHoursService, Patient
from services.alerts.domain.hours import is_open, local_time

StepKind = Literal["emergency_112", "acute_team", "gp", "out_of_hours", "task_list"]
Severity = Literal["high", "medium", "low-medium", "low", "trend", "missing_measurement"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
ResponderKind = Literal["acute_team", "gp", "out_of_hours"]
_SEVERITY_BY_NAME: dict[str, Severity] = {severity: severity for severity in SEVERITIES}

JsonStep = dict[str, str | int | None]


class Step(BaseModel):
    """One responder in a chain; ``ack_timeout_s`` None means nobody waits on this step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StepKind
    org_id: str | None
    name: str
    phone: str | None
    ack_timeout_s: PositiveInt | None

    def to_json(self) -> JsonStep:
        return {
            "kind": self.kind,
            "org_id": self.org_id,
            "name": self.name,
            "phone": self.phone,
            "ack_timeout_s": self.ack_timeout_s,
        }


class Route(BaseModel):
    """The responder chain for one alert, first responder first, and why it is not the
    ordinary one (warnings for the operator)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain: list[Step] = Field(min_length=1)
    warnings: list[str] = []

    def to_json(self) -> dict[str, list[JsonStep] | list[str]]:
        return {"chain": [step.to_json() for step in self.chain], "warnings": list(self.warnings)}


def _default_timeouts() -> dict[Severity, dict[ResponderKind, int]]:
    return {
        "high": {"acute_team": 300, "out_of_hours": 600},
        "medium": {"acute_team": 900, "out_of_hours": 1800},
        "low-medium": {"acute_team": 1800, "gp": 3600, "out_of_hours": 1800},
        "low": {"gp": 7200, "out_of_hours": 3600, "acute_team": 3600},
        "trend": {"gp": 14400, "out_of_hours": 7200, "acute_team": 7200},
    }


class RoutingPolicy(BaseModel):
    """What routing may be tuned by an operator: timeouts per severity and responder, where
    low-medium alerts go, and the fallback when no responder is known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ack_timeouts_s: dict[Severity, dict[ResponderKind, PositiveInt]] = Field(
        default_factory=_default_timeouts
    )
    # Used where ack_timeouts_s has no entry for a severity and responder.
    default_ack_timeout_s: PositiveInt = 900
    low_medium_to: Literal["acute_team", "gp"] = "acute_team"
    emergency_name: str = "Ring 112 (alarmcentralen)"
    # Region whose out-of-hours service takes alerts of a patient whose own region has none.
    fallback_region: str | None = None
    fallback_name: str = "Nærvagt driftsvagt (ansvarlig ukendt)"
    fallback_phone: str | None = None
    fallback_org_id: str | None = None
    fallback_task_list_name: str = "Nærvagt driftens opgaveliste (ansvarlig ukendt)"

    def ack_timeout(self, severity: Severity, responder: ResponderKind) -> int:
        return self.ack_timeouts_s.get(severity, {}).get(responder, self.default_ack_timeout_s)


class _Responders:
    """The organisations known for one patient, with a warning for each one missing."""

    def __init__(
        self, patient: Patient | None, *, care: CareStructure, policy: RoutingPolicy
    ) -> None:
        self.warnings: list[str] = []
        if patient is None:
            self.acute_team = None
            self.gp = None
            self.out_of_hours = care.out_of_hours_for(policy.fallback_region)
            self.warnings.append(
                "alert has no known patient; no responder can be looked up"
                + _fallback_note(self.out_of_hours, policy=policy)
            )
            return
        pid = patient.patient_id
        self.acute_team = care.acute_team_for(patient.municipality)
        if self.acute_team is None:
            self.warnings.append(
                f"patient {pid!r}: no acute team serves municipality {patient.municipality!r}"
            )
        self.gp = care.gp_for(patient)
        if self.gp is None:
            self.warnings.append(
                f"patient {pid!r}: GP practice {patient.gp_practice_id!r} is not known"
            )
        self.out_of_hours = care.out_of_hours_for(patient.region)
        if self.out_of_hours is None:
            self.out_of_hours = care.out_of_hours_for(policy.fallback_region)
            self.warnings.append(
                f"patient {pid!r}: region {patient.region!r} has no out-of-hours service"
                + _fallback_note(self.out_of_hours, policy=policy)
            )


def _fallback_note(out_of_hours: OutOfHoursService | None, *, policy: RoutingPolicy) -> str:
    if out_of_hours is None:
        return ""
    return f"; using {out_of_hours.name!r} of region {policy.fallback_region!r}"


def route(
    patient: Patient | None,
    *,
    severity_or_kind: str,
    at: datetime,
    care: CareStructure,
    policy: RoutingPolicy,
) -> Route:
    """The responder chain for an alert of ``severity_or_kind`` about ``patient`` at ``at``."""
    responders = _Responders(patient, care=care, policy=policy)
    warnings = responders.warnings
    severity = _SEVERITY_BY_NAME.get(severity_or_kind)
    if severity is None:
        warnings.append(f"unknown severity {severity_or_kind!r}; routed as 'medium'")
        severity = "medium"

    if severity == "missing_measurement":
        return Route(chain=[_task_list(responders, policy=policy)], warnings=warnings)

    chain: list[Step] = []
    if severity == "high":
        chain.append(
            Step(
                kind="emergency_112",
                org_id=None,
                name=policy.emergency_name,
                phone="112",
                ack_timeout_s=None,
            )
        )
    if severity in ("low", "trend") or (severity == "low-medium" and policy.low_medium_to == "gp"):
        order = _gp_order(responders, severity=severity, at=at, warnings=warnings)
    else:
        order = ["acute_team", "out_of_hours"]

    for responder in order:
        step = _responder_step(responders, responder, severity=severity, policy=policy)
        if step is not None:
            chain.append(step)
    if all(step.kind == "emergency_112" for step in chain):
        warnings.append("no responder known for this alert; using the fallback responder")
        chain.append(_fallback_step(severity, policy=policy))
    return Route(chain=chain, warnings=warnings)


def _gp_order(
    responders: _Responders, *, severity: Severity, at: datetime, warnings: list[str]
) -> list[ResponderKind]:
    if responders.gp is not None and is_open(responders.gp.opening_hours, at):
        return ["gp", "acute_team"]
    if responders.gp is not None and responders.out_of_hours is None:
        warnings.append(
            f"{severity} alert outside the opening hours of {responders.gp.name!r} "
            f"({local_time(at).isoformat(timespec='minutes')}) and no out-of-hours service; "
            "sent to the acute team"
        )
    return ["out_of_hours", "acute_team"]


def _responder_step(
    responders: _Responders,
    responder: ResponderKind,
    *,
    severity: Severity,
    policy: RoutingPolicy,
) -> Step | None:
    org = {
        "acute_team": responders.acute_team,
        "gp": responders.gp,
        "out_of_hours": responders.out_of_hours,
    }[responder]
    if org is None:
        return None
    return Step(
        kind=responder,
        org_id=org.org_id,
        name=org.name,
        phone=org.phone,
        ack_timeout_s=policy.ack_timeout(severity, responder),
    )


def _task_list(responders: _Responders, *, policy: RoutingPolicy) -> Step:
    # A task list is worked through, not acknowledged against a clock: no timeout.
    owner = responders.acute_team or responders.gp
    if owner is None:
        responders.warnings.append(
            "no acute team or GP practice known; task goes to the operators' list"
        )
        return Step(
            kind="task_list",
            org_id=None,
            name=policy.fallback_task_list_name,
            phone=None,
            ack_timeout_s=None,
        )
    if responders.acute_team is None:
        responders.warnings.append(f"task goes to the GP practice {owner.name!r} instead")
    return Step(
        kind="task_list",
        org_id=owner.org_id,
        name=f"Opgaveliste: {owner.name}",
        phone=None,
        ack_timeout_s=None,
    )


def _fallback_step(severity: Severity, *, policy: RoutingPolicy) -> Step:
    return Step(
        kind="out_of_hours",
        org_id=policy.fallback_org_id,
        name=policy.fallback_name,
        phone=policy.fallback_phone,
        ack_timeout_s=policy.ack_timeout(severity, "out_of_hours"),
    )
