"""The SDK's exceptions, mapped from the answer's errorCode first, its HTTP status second.

LedgerdeskError                 anything this SDK raises
├── ConfigurationError          missing or malformed credentials (also a ValueError)
├── TransportError              no answer: connection refused, reset, timed out
├── WebhookVerificationError    a webhook delivery that is not ledgerdesk's (webhooks.verify)
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


class ConfigurationError(LedgerdeskError, ValueError):
    """The client cannot be made: a setting is missing or malformed.

    ``missing`` names each missing setting as ``(argument, environment variable)``,
    e.g. ``("base_url", "LEDGERDESK_URL")``, so a program can say it in its own words
    (the command line says ``--url``).
    """

    def __init__(self, message: str, missing: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


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
    """The request was malformed or a parameter is wrong (1001-1006); ``errors``
    names each offending parameter."""


class PayloadTooLargeError(InvalidRequestError):
    """The body or an attachment is over the server's limit (4001)."""


class AuthenticationError(APIError):
    """Unknown user, or a wrong, revoked or expired key (2001); one message for all."""


class PermissionDeniedError(APIError):
    """The key may not be used for this category (2002) or from this address (2003)."""


class NotFoundError(APIError):
    """No such invoice, ticket or attachment for this account (3001); another
    account's object is not found either."""


class ConflictError(APIError):
    """Not allowed in the ticket's state (3002), or an Idempotency-Key reused with
    another request (3003)."""


class RateLimitError(APIError):
    """Too many requests (4002); ``retry_after`` says in how many seconds to retry."""


class ServerError(APIError):
    """The server failed or is busy (5000, or a 5xx without an envelope); safe to
    retry later."""


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


class WebhookVerificationError(LedgerdeskError, ValueError):
    """A webhook delivery that does not verify: a header missing or malformed, a
    timestamp outside the tolerance, no signature made with the secret, or a body that
    is not an event. Answer it with 400 and do not act on it."""
