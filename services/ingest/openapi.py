"""The ingest API's OpenAPI 3.1 document (GET /openapi.json), built from its pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.ingest import schemas
from services.ingest.domain.fhir import FHIR_CONTENT_TYPE

_MODELS: Final[list[type[BaseModel]]] = [
    schemas.ReadingsRequest,
    schemas.ReadingsResult,
    schemas.ErrorOut,
    schemas.StreamErrorOut,
    schemas.DeviceRegistration,
    schemas.DeviceCredentials,
    schemas.DeviceOut,
    schemas.DeviceList,
    schemas.DeviceRevoked,
    schemas.PatientReadings,
    schemas.FhirResource,
]
_REF = "#/components/schemas/{model}"

_DEVICE: Final[list[dict[str, list[str]]]] = [
    {"deviceId": [], "deviceTimestamp": [], "deviceSignature": []}
]
_BEARER: Final[list[dict[str, list[str]]]] = [{"bearer": []}]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _fhir(description: str) -> dict[str, Any]:
    schema = _ref(schemas.FhirResource)
    return {"description": description, "content": {FHIR_CONTENT_TYPE: {"schema": schema}}}


def _errors(*statuses: int, fhir: bool = False) -> dict[str, Any]:
    reasons = {
        400: "Malformed request",
        401: "Not authenticated (bad signature or token, stale or replayed request)",
        403: "Authenticated but not allowed",
        404: "Not found (or not among your organisation's patients)",
        409: "Conflicts with the current state",
        413: "Body or batch too large",
        415: f"Content-Type is not {FHIR_CONTENT_TYPE}",
        422: "Invalid fields",
        429: "Rate limited; see Retry-After",
        503: "A dependency is unavailable; retry after Retry-After",
    }
    return {
        str(s): _fhir(reasons[s]) if fhir else _json(schemas.ErrorOut, reasons[s]) for s in statuses
    }


def _query(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _paths() -> dict[str, Any]:
    device_errors = _errors(400, 401, 413, 422, 429, 503)
    admin_errors = _errors(401, 403, 404, 503)
    device_id = [_path("device_id")]
    return {
        "/v1/readings": {
            "post": {
                "summary": "Send a batch of readings (device-signed)",
                "security": _DEVICE,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(schemas.ReadingsRequest)}},
                },
                "responses": {
                    "202": _json(schemas.ReadingsResult, "Accepted (the broker has them)"),
                    **device_errors,
                    "422": {
                        "description": "Nothing accepted (see rejected), or an invalid body",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [_ref(schemas.ReadingsResult), _ref(schemas.ErrorOut)]
                                }
                            }
                        },
                    },
                },
            }
        },
        "/v1/stream": {
            "get": {
                "summary": "WebSocket: one readings batch per message (device-signed at connect)",
                "description": (
                    'Sign "{X-Timestamp}\\nGET /v1/stream". Each message is a ReadingsRequest '
                    "and is answered with a ReadingsResult or a StreamErrorOut."
                ),
                "security": _DEVICE,
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                    **_errors(401, 429, 503),
                },
            }
        },
        "/fhir/Observation": {
            "post": {
                "summary": "Send one FHIR R4 Observation (device-signed)",
                "security": _DEVICE,
                "requestBody": {"required": True, "content": _fhir("")["content"]},
                "responses": {
                    "201": _fhir("Created; Location names the reading"),
                    "200": _fhir("Received before, or nothing to score"),
                    **_errors(400, 401, 413, 415, 429, 503, fhir=True),
                },
            },
            "get": {
                "summary": "Search a patient's Observations (clinicians)",
                "security": _BEARER,
                "parameters": [
                    _query("patient", "Patient/{id} or {id}", required=True),
                    _query("code", "LOINC codes or vital types, comma-separated"),
                    _query("date", "eq, gt, lt, ge, le, sa or eb and a date or dateTime"),
                    _query("_count", "page size"),
                    _query("_cursor", "from a next link"),
                ],
                "responses": {
                    "200": _fhir("A searchset Bundle"),
                    **_errors(400, 401, 403, 404, 503, fhir=True),
                },
            },
        },
        "/fhir": {
            "post": {
                "summary": "Send a FHIR Bundle (batch, transaction or collection; device-signed)",
                "security": _DEVICE,
                "requestBody": {"required": True, "content": _fhir("")["content"]},
                "responses": {
                    "200": _fhir("A batch-response or transaction-response Bundle"),
                    **_errors(400, 401, 413, 415, 429, 503, fhir=True),
                },
            }
        },
        "/v1/patients/{patient_id}/readings": {
            "get": {
                "summary": "A patient's readings in canonical units (clinicians)",
                "security": _BEARER,
                "parameters": [
                    _path("patient_id"),
                    _query("type", "vital types, comma-separated or repeated"),
                    _query("from", "RFC 3339, inclusive"),
                    _query("to", "RFC 3339, exclusive"),
                    _query("limit", "page size"),
                    _query("after", "cursor from a next link"),
                ],
                "responses": {
                    "200": _json(schemas.PatientReadings, "One page of readings"),
                    **_errors(401, 403, 404, 422, 503),
                },
            }
        },
        "/v1/admin/devices": {
            "post": {
                "summary": "Register a device for a patient (operators)",
                "security": _BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(schemas.DeviceRegistration)}},
                },
                "responses": {
                    "201": _json(schemas.DeviceCredentials, "Registered; the secret, once"),
                    **_errors(400, 401, 403, 409, 413, 422, 503),
                },
            },
            "get": {
                "summary": "List devices (operators)",
                "security": _BEARER,
                "parameters": [
                    _query("patient_id", "only this patient's devices"),
                    _query("active", "true or false"),
                ],
                "responses": {
                    "200": _json(schemas.DeviceList, "Devices"),
                    **_errors(401, 403, 422, 503),
                },
            },
        },
        "/v1/admin/devices/{device_id}": {
            "get": {
                "summary": "One device (operators)",
                "security": _BEARER,
                "parameters": device_id,
                "responses": {"200": _json(schemas.DeviceOut, "The device"), **admin_errors},
            }
        },
        "/v1/admin/devices/{device_id}/rotate": {
            "post": {
                "summary": "Give the device a new secret; the old one is refused at once",
                "security": _BEARER,
                "parameters": device_id,
                "responses": {
                    "200": _json(schemas.DeviceCredentials, "The new secret, once"),
                    **admin_errors,
                },
            }
        },
        "/v1/admin/devices/{device_id}/revoke": {
            "post": {
                "summary": "Revoke the device; it is refused at once",
                "security": _BEARER,
                "parameters": device_id,
                "responses": {"200": _json(schemas.DeviceRevoked, "Revoked"), **admin_errors},
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Nærvagt ingest",
            "version": "1",
            "description": "The device gateway: readings in (native JSON, FHIR R4, WebSocket), "
            "device administration, and clinicians' reads of stored readings.",
        },
        "paths": _paths(),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "deviceId": {"type": "apiKey", "in": "header", "name": "X-Device-Id"},
                "deviceTimestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp"},
                "deviceSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Signature",
                    "description": 'hex HMAC-SHA256 of "{X-Timestamp}\\n" + body',
                },
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", get_openapi)
