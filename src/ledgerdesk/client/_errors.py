"""The SDK's exceptions, mapped from the answer's errorCode first, its HTTP status second.

LedgerdeskError                 anything this SDK raises
├── TransportError              no answer: connection refused, reset, timed out
└── APIError                    the server answered an error (.code, .status, .errors)
    ├── InvalidRequestError     1001 body, 1002 action, 1003 parameters, 1004 content
    │   │                       type, 1005 category, 1006 method
    │   └── PayloadTooLargeError    4001
    ├── AuthenticationError     2001 unknown user, wrong, revoked or expired key
    ├── PermissionDeniedError   2002 category, 2003 address not allowed for the key
    ├── NotFoundError           3001 (also another account's object)
    ├── ConflictError           3002 ticket state, 3003 Idempotency-Key reuse
    ├── RateLimitError          4002 (.retry_after, in seconds)
    └── ServerError             5000, or any 5xx without an envelope
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParamError:
    """One offending parameter, as the server named it."""

    property: str
    message: str


class LedgerdeskError(Exception):
    """Base of every exception the SDK raises."""


class TransportError(LedgerdeskError):
    """The request got no answer (after the retries it was allowed)."""


class APIError(LedgerdeskError):
    """The server answered with an error envelope (or an error status without one)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None,
        status: int,
        errors: tuple[ParamError, ...] = (),
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.errors = errors
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" ({self.code})" if self.code is not None else f" (HTTP {self.status})"
        return f"{self.message}{code}"


class InvalidRequestError(APIError):
    pass


class PayloadTooLargeError(InvalidRequestError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class RateLimitError(APIError):
    pass


class ServerError(APIError):
    pass


_BY_CODE: dict[int, type[APIError]] = {
    1001: InvalidRequestError,
    1002: InvalidRequestError,
    1003: InvalidRequestError,
    1004: InvalidRequestError,
    1005: InvalidRequestError,
    1006: InvalidRequestError,
    2001: AuthenticationError,
    2002: PermissionDeniedError,
    2003: PermissionDeniedError,
    3001: NotFoundError,
    3002: ConflictError,
    3003: ConflictError,
    4001: PayloadTooLargeError,
    4002: RateLimitError,
    5000: ServerError,
}
_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def error_class(code: int | None, status: int) -> type[APIError]:
    """The exception for an answer: by errorCode when there is one, else by status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, InvalidRequestError)
