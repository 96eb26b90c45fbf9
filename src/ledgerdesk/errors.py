"""The error tree: one class per row of the protocol's error table (SPEC section 1).

Services raise these; the wire layer alone turns them into the error envelope, so a
business failure never has to know about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class ParamError:
    """One offending parameter: ``property`` is the wire name, ``message`` says what is wrong."""

    property: str
    message: str


class LedgerdeskError(Exception):
    error_code: ClassVar[int] = 5000
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal error."

    def __init__(self, message: str | None = None, errors: Sequence[ParamError] = ()) -> None:
        self.message = message or self.default_message
        self.errors = tuple(errors)
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """HTTP headers this answer must carry besides the usual ones."""
        return {}


class InvalidBody(LedgerdeskError):
    error_code = 1001
    http_status = 400
    default_message = "The request body is not a valid JSON object."


class UnknownAction(LedgerdeskError):
    error_code = 1002
    http_status = 400
    default_message = "Unknown or missing action."


class InvalidParameters(LedgerdeskError):
    error_code = 1003
    http_status = 400
    default_message = "One or more parameters are invalid."


class UnsupportedMediaType(LedgerdeskError):
    error_code = 1004
    http_status = 415
    default_message = "Unsupported content type."


class UnknownCategory(LedgerdeskError):
    error_code = 1005
    http_status = 404
    default_message = "Unknown category."


class MethodNotAllowed(LedgerdeskError):
    error_code = 1006
    http_status = 405
    default_message = "Method not allowed; use POST."

    def headers(self) -> dict[str, str]:
        return {"Allow": "POST"}


class RequestTimeout(LedgerdeskError):
    """The body stopped arriving: an incomplete body, answered like a malformed one."""

    error_code = 1001
    http_status = 408
    default_message = "The request body did not arrive in time."

    def headers(self) -> dict[str, str]:
        # The rest of the body may still come; it must not be read as the next request.
        return {"Connection": "close"}


class AuthenticationFailed(LedgerdeskError):
    error_code = 2001
    http_status = 401
    # One message for an unknown user and a wrong, revoked or expired key: telling them
    # apart would let a caller probe which user ids exist.
    default_message = "Authentication failed: unknown user or invalid API key."


class CategoryForbidden(LedgerdeskError):
    error_code = 2002
    http_status = 403
    default_message = "This API key is not allowed for this category."


class AddressForbidden(LedgerdeskError):
    error_code = 2003
    http_status = 403
    default_message = "This API key is not allowed from your IP address."


class NotFound(LedgerdeskError):
    error_code = 3001
    http_status = 404
    default_message = "Not found."


class InvalidState(LedgerdeskError):
    error_code = 3002
    http_status = 409
    default_message = "The action is not allowed in the ticket's current state."


class IdempotencyConflict(LedgerdeskError):
    error_code = 3003
    http_status = 409
    default_message = "This Idempotency-Key was already used with a different request."


class PayloadTooLarge(LedgerdeskError):
    error_code = 4001
    http_status = 413
    default_message = "The request body is too large."


class RetryLater(LedgerdeskError):
    """An answer that says when to try again (``Retry-After``, in seconds)."""

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimited(RetryLater):
    error_code = 4002
    http_status = 429
    default_message = "Too many requests; retry later."


class InternalError(LedgerdeskError):
    pass


class ServerBusy(RetryLater):
    """Over the memory budget for request bodies (or another bound): retry shortly."""

    error_code = 5000
    http_status = 503
    default_message = "The server is busy; retry shortly."


class DatabaseUnavailable(RetryLater):
    """The database does not answer (down, hung, out of disk): retry shortly."""

    error_code = 5000
    http_status = 503
    default_message = "The database is not answering; retry shortly."


ALL_ERRORS: tuple[type[LedgerdeskError], ...] = (
    InvalidBody,
    UnknownAction,
    InvalidParameters,
    UnsupportedMediaType,
    UnknownCategory,
    MethodNotAllowed,
    AuthenticationFailed,
    CategoryForbidden,
    AddressForbidden,
    NotFound,
    InvalidState,
    IdempotencyConflict,
    PayloadTooLarge,
    RateLimited,
    InternalError,
    ServerBusy,
    RequestTimeout,
    DatabaseUnavailable,
)


def invalid(property: str, message: str) -> InvalidParameters:
    """The common case of one bad parameter."""
    return InvalidParameters(
        f"Invalid parameter {property}: {message}.", [ParamError(property, message)]
    )


def problems_error(problems: Sequence[ParamError]) -> InvalidParameters:
    """Several bad parameters at once, each named."""
    if len(problems) == 1:
        return invalid(problems[0].property, problems[0].message)
    names = ", ".join(dict.fromkeys(p.property for p in problems))
    return InvalidParameters(f"Invalid parameters: {names}.", problems)
