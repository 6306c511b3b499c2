"""The one error hierarchy of every Twilio service client.

Every failure of a service call raises a :class:`ServiceError` (or a subclass), never a
raw ``httpx`` exception, a ``json`` error or a cattrs validation error. Each error says
which service and which request failed, the HTTP status (``None`` when no answer came
back) and Twilio's request id (the ``Twilio-Request-Id`` header) so it can be quoted to
Twilio support. Errors never carry credentials or request bodies, and their message is an
:func:`~tac_actors._logsafe.excerpt` (a service's error text cannot forge a log line).
"""

from __future__ import annotations

from tac_actors._logsafe import excerpt

__all__ = [
    "BadResponse",
    "Conflict",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "ServiceUnavailable",
]


class ServiceError(Exception):
    """A Twilio service call failed.

    ``status`` is the HTTP status code, or ``None`` when the request never got an answer
    (connection refused, timeout). ``service`` is the product (``"memory"``,
    ``"conversations"``...), ``url_path`` the path without host or query string.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        service: str = "",
        method: str = "",
        url_path: str = "",
        code: int | None = None,
    ) -> None:
        message = excerpt(message, 500)
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.service = service
        self.method = method
        self.url_path = url_path
        #: Twilio's numeric error code from the error body, when there was one
        self.code = code

    def __str__(self) -> str:
        where = f"{self.service} {self.method} {self.url_path}".strip()
        status = f"HTTP {self.status}" if self.status is not None else "no response"
        request = f", request id {self.request_id}" if self.request_id else ""
        return f"{where}: {status}{request}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, request_id={self.request_id!r}, "
            f"service={self.service!r}, method={self.method!r}, url_path={self.url_path!r}, "
            f"message={self.message!r})"
        )


class NotFound(ServiceError):
    """HTTP 404: the resource (profile, conversation, store...) does not exist."""


class Conflict(ServiceError):
    """HTTP 409. ``conflicting_resource_id`` is the ``X-Conflicting-Resource-Id`` header
    (the Orchestrator names the existing conversation this way)."""

    def __init__(self, message: str, *, conflicting_resource_id: str | None = None,
                 **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.conflicting_resource_id = conflicting_resource_id


class RateLimited(ServiceError):
    """HTTP 429 after the retries ran out. ``retry_after`` is the last ``Retry-After``
    value in seconds, when the service sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServiceUnavailable(ServiceError):
    """A 5xx answer, or no answer at all (connect error, timeout), after the retries ran
    out."""


class BadResponse(ServiceError):
    """The service answered, but not with what the API promises: an HTML page instead of
    JSON, a missing field, a field of the wrong type."""
