"""The platform's error tree; every error carries the data that explains it.

NaervagtError
 ├── ConfigurationError          settings missing or unsafe at start-up
 ├── InvalidInput                bad request data (field-level errors) -> 4xx
 │    └── PayloadTooLarge
 ├── AuthError                   -> 401
 │    ├── BadSignature
 │    ├── StaleTimestamp
 │    ├── UnknownDevice
 │    └── InvalidToken
 ├── Forbidden                   -> 403
 ├── NotFound                    -> 404
 ├── Conflict                    -> 409
 ├── RateLimited                 -> 429 (with Retry-After)
 ├── Unavailable                 -> 503 (with Retry-After): a dependency is down
 └── PoisonMessage               a consumed message that can never be processed
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class NaervagtError(Exception):
    """Root of every error the platform raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(NaervagtError):
    code = "configuration"


class InvalidInput(NaervagtError):
    status = 422
    code = "invalid_input"

    def __init__(self, message: str, problems: Sequence[FieldProblem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class AuthError(NaervagtError):
    status = 401
    code = "unauthorized"


class BadSignature(AuthError):
    code = "bad_signature"


class StaleTimestamp(AuthError):
    code = "stale_timestamp"


class UnknownDevice(AuthError):
    code = "unknown_device"

    def __init__(self, device_id: str) -> None:
        super().__init__("unknown or revoked device")
        self.device_id = device_id


class InvalidToken(AuthError):
    code = "invalid_token"


class Forbidden(NaervagtError):
    status = 403
    code = "forbidden"


class NotFound(NaervagtError):
    status = 404
    code = "not_found"


class Conflict(NaervagtError):
    status = 409
    code = "conflict"


class RateLimited(NaervagtError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(NaervagtError):
    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PoisonMessage(NaervagtError):
    """A consumed message that no retry can ever process: it goes to the dead-letter topic."""

    code = "poison"
