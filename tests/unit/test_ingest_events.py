"""The event a reading is published as: what consumers decode is the reading ingest accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.validation import Reading
from services.ingest.intake import event_json, headers_template, reading_message
from shared.events import ReadingAccepted
from shared.vitals import CANONICAL_UNIT, CONSCIOUSNESS_LEVELS, VitalType

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    vital = draw(st.sampled_from(list(VitalType)))
    value: float | bool | str
    if vital is VitalType.ON_OXYGEN:
        value = draw(st.booleans())
    elif vital is VitalType.CONSCIOUSNESS:
        value = draw(st.sampled_from(CONSCIOUSNESS_LEVELS))
    else:
        value = draw(st.floats(allow_nan=False, allow_infinity=False))
    measured_at = NOW - draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
    return Reading(
        reading_id=draw(st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True)),
        type=vital,
        value=value,
        unit=CANONICAL_UNIT[vital],
        measured_at=measured_at,
        late=draw(st.booleans()),
        original_value=value,
        original_unit=CANONICAL_UNIT[vital],
    )


@given(st.text(min_size=1), st.text(min_size=1), st.lists(readings(), min_size=1, max_size=5))
def test_each_event_decodes_to_the_accepted_reading(
    device_id: str, patient_id: str, batch: list[Reading]
) -> None:
    for reading, body in zip(batch, event_json(device_id, patient_id, batch, NOW), strict=True):
        assert ReadingAccepted.model_validate_json(body) == ReadingAccepted(
            device_id=device_id,
            reading_id=reading.reading_id,
            patient_id=patient_id,
            type=reading.type,
            value=reading.value,
            unit=reading.unit,
            measured_at=reading.measured_at,
            received_at=NOW,
            late=reading.late,
        )


def test_a_message_is_keyed_by_patient_and_names_the_reading_in_its_headers() -> None:
    message = reading_message(
        headers_template(), device_id="dev-1", reading_id="r-1", patient_id="pt-1", event=b"{}"
    )
    headers = dict(message.headers)
    assert message.key == b"pt-1"
    assert headers["ce_id"] == b"dev-1/r-1"  # the same reading published twice: the same id
    assert headers["ce_subject"] == b"r-1"
    assert headers["ce_type"] == ReadingAccepted.ce_type.encode()
    assert headers["ce_specversion"] == b"1.0"
    assert {"ce_source", "ce_time", "content-type"} <= set(headers)
