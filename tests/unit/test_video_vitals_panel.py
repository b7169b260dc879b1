"""The vital-signs panel beside the video: clinical order, readable values, LOINC codes."""

from __future__ import annotations

from datetime import UTC, datetime

from services.video.domain.vitals_panel import StoredReading, panel

AT = datetime(2026, 1, 7, 8, 15, tzinfo=UTC)


def reading(type_: str, value: float | None, unit: str, text: str | None = None) -> StoredReading:
    return StoredReading(type_, value, text, unit, AT)


def test_values_come_in_news2_order_with_their_units_and_codes() -> None:
    entries = panel(
        [
            reading("temperature", 38.4, "Cel"),
            reading("heart_rate", 118.0, "/min"),
            reading("spo2", 89.0, "%"),
            reading("respiratory_rate", 24.0, "/min"),
        ]
    )

    assert [(e["type"], e["value"], e["unit"], e["loinc"]) for e in entries] == [
        ("respiratory_rate", 24.0, "/min", "9279-1"),
        ("spo2", 89.0, "%", "59408-5"),
        ("heart_rate", 118.0, "/min", "8867-4"),
        ("temperature", 38.4, "Cel", "8310-5"),
    ]
    assert entries[0]["measured_at"] == "2026-01-07T08:15:00+00:00"


def test_oxygen_is_yes_or_no_and_consciousness_is_a_letter() -> None:
    entries = panel([reading("on_oxygen", 0.0, "1"), reading("consciousness", None, "1", text="C")])

    assert [(e["type"], e["value"]) for e in entries] == [
        ("on_oxygen", False),
        ("consciousness", "C"),
    ]


def test_types_the_panel_does_not_know_are_left_out() -> None:
    assert panel([reading("steps", 4000.0, "1")]) == []
