"""One shared HTTP client for every Twilio product, with retries and typed errors.

:class:`ServiceHTTP` wraps a single :class:`httpx.AsyncClient` (one connection pool for
all products, unlike the reference SDK which opens a new TLS client per request). It
promises:

- **hosts**: ``https://{product}.twilio.com``, or ``https://{product}.{region}.twilio.com``
  when a region is set; a per-product override or one base URL for every product (the
  local emulator) wins over both. Products never share a path prefix, so one base URL can
  serve them all.
- **auth**: HTTP basic with the API key and secret, or the account SID and auth token
  when no key is configured. Credentials never appear in logs, reprs or errors.
- **retries**: connect errors, 429 and 5xx are retried with exponential backoff and full
  jitter, waiting exactly ``Retry-After`` seconds when the service sends it, up to
  :attr:`RetryPolicy.max_attempts` attempts. A request that may have reached the server is
  retried only when it is idempotent: GET/PUT/DELETE, a POST the caller declares to be a
  pure query (``idempotent=True``), or any request carrying an
  ``I-Twilio-Idempotency-Token``. A request that never left (connection refused, pool
  timeout) is safe to resend whatever its method.
- **errors**: every failure is a :class:`~tac_actors.services.errors.ServiceError`: no
  answer, an answer that cannot be decoded (a corrupt gzip body), a request that cannot
  be encoded (a lone surrogate in a JSON body or the URL) included.
- **paths**: ids interpolated into a path go through :func:`path_segment`, so an id such
  as ``../../v1/Stores`` stays one segment of the path it was meant for.
- **time**: waits use :func:`trio.sleep`, so tests run under ``trio.testing.MockClock``.

Cancellation: :meth:`ServiceHTTP.request` is cancellable at any point, including its
backoff sleeps; a cancelled request raises :class:`trio.Cancelled` as usual.
"""

from __future__ import annotations

import enum
import importlib.metadata
import json
import logging
import platform
import random
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import httpx
import trio

from tac_actors import tracing
from tac_actors.metrics import Histogram
from tac_actors.services.errors import (
    BadResponse,
    Conflict,
    NotFound,
    RateLimited,
    ServiceError,
    ServiceUnavailable,
)

if TYPE_CHECKING:
    from tac_actors.config import TACConfig

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "IDEMPOTENCY_HEADER",
    "NO_RETRY",
    "REQUEST_ID_HEADER",
    "Product",
    "Reply",
    "RetryPolicy",
    "ServiceHTTP",
    "ServiceHosts",
    "path_segment",
    "user_agent",
]

logger = logging.getLogger("tac_actors.services")

REQUEST_ID_HEADER = "Twilio-Request-Id"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# exceptions raised before any byte of the request was sent
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def path_segment(value: str) -> str:
    """``value`` percent-encoded as exactly one URL path segment.

    Every character but ``A-Z a-z 0-9 - _ . ~`` is encoded (``/`` included), and the dot
    segments ``.`` and ``..`` are encoded too, so neither the client nor the server can
    resolve them into a parent path. A lone surrogate is encoded as its UTF-8-style
    bytes (the service then answers 404): this never raises.
    """
    encoded = quote(value, safe="", errors="surrogatepass")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")
    return encoded


class Product(enum.StrEnum):
    """The Twilio products we talk to; the value is the host name's first label."""

    CONVERSATIONS = "conversations"
    MEMORY = "memory"
    KNOWLEDGE = "knowledge"
    STUDIO = "studio"
    API = "api"
    MESSAGING = "messaging"


def user_agent() -> str:
    """The User-Agent sent with every request."""
    try:
        version = importlib.metadata.version("tac-actors")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        version = "0"
    return (
        f"tac-actors/{version} ({platform.system()} {platform.machine()}) "
        f"Python/{platform.python_version()}"
    )


@attrs.frozen(kw_only=True)
class ServiceHosts:
    """Where each product lives. ``overrides`` beats ``base_url`` beats the region."""

    region: str | None = None
    base_url: str | None = None
    overrides: Mapping[str, str] = attrs.field(factory=dict)

    def url_for(self, product: Product | str) -> str:
        """The base URL (scheme and host, no trailing slash) of ``product``."""
        name = str(product)
        if name in self.overrides:
            return self.overrides[name].rstrip("/")
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.region:
            return f"https://{name}.{self.region}.twilio.com"
        return f"https://{name}.twilio.com"


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How failed requests are retried.

    Attempt ``n`` (1-based) waits ``uniform(0, min(max_delay, base_delay * 2**(n-1)))``
    before the next one ("full jitter"), or exactly ``Retry-After`` seconds when the
    service sent that header. A ``Retry-After`` above ``max_retry_after`` is not waited
    for: the error is raised at once.
    """

    max_attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must not be negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(0.0, ceiling)


DEFAULT_RETRY = RetryPolicy()
#: for calls that must not wait (e.g. inside a tight per-turn budget)
NO_RETRY = RetryPolicy(max_attempts=1)


@attrs.frozen(kw_only=True)
class Reply:
    """A successful (2xx) answer: the parsed JSON body (``None`` when empty) and enough
    context to build a precise error if the body turns out to be wrong."""

    status: int
    body: Any
    headers: httpx.Headers = attrs.field(repr=False)
    request_id: str | None
    service: str
    method: str
    url_path: str

    def bad(self, message: str) -> BadResponse:
        """A :class:`BadResponse` carrying this reply's context."""
        return BadResponse(
            message, status=self.status, request_id=self.request_id, service=self.service,
            method=self.method, url_path=self.url_path,
        )

    def object(self) -> dict[str, Any]:
        """The body as a JSON object; :class:`BadResponse` when it is anything else."""
        if not isinstance(self.body, dict):
            raise self.bad(f"expected a JSON object, got {type(self.body).__name__}")
        return self.body


class ServiceCallStats:
    """Requests by ``(product, status)``, their latency by product (retries included),
    and retries by product. Bounded: products are a fixed set, statuses HTTP codes."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        self.seconds: dict[str, Histogram] = {}
        self.retries: dict[str, int] = {}

    def observe(self, product: str, status: str, seconds: float) -> None:
        key = (product, status)
        self.calls[key] = self.calls.get(key, 0) + 1
        histogram = self.seconds.get(product)
        if histogram is None:
            histogram = self.seconds[product] = Histogram()
        histogram.observe(seconds)


class ServiceHTTP:
    """The shared client. Build it with :meth:`from_config`; close it with :meth:`aclose`.

    It owns its :class:`httpx.AsyncClient` only when it created it.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        hosts: ServiceHosts,
        retry: RetryPolicy = DEFAULT_RETRY,
        rng: random.Random | None = None,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self.hosts = hosts
        self.retry = retry
        self._rng = rng or random.Random()
        self._owns_client = owns_client
        #: what every request did, read by ``GET /metrics``
        self.stats = ServiceCallStats()

    def __repr__(self) -> str:
        return f"ServiceHTTP(hosts={self.hosts!r}, retry={self.retry!r})"

    @classmethod
    def from_config(
        cls,
        config: TACConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        retry: RetryPolicy = DEFAULT_RETRY,
        rng: random.Random | None = None,
    ) -> ServiceHTTP:
        """A client for ``config``'s credentials, region and URL overrides.

        Raises :class:`ValueError` when the config has neither an API key and secret nor
        an account SID and auth token.
        """
        if config.api_key and config.api_secret:
            auth = httpx.BasicAuth(config.api_key, config.api_secret)
        elif config.account_sid and config.auth_token:
            auth = httpx.BasicAuth(config.account_sid, config.auth_token)
        else:
            raise ValueError(
                "Twilio services need credentials: set TWILIO_API_KEY and TWILIO_API_SECRET "
                "(or TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"
            )
        client = httpx.AsyncClient(
            auth=auth,
            headers={"User-Agent": user_agent()},
            timeout=timeouts,
            limits=limits,
            transport=transport,
            follow_redirects=False,
        )
        hosts = ServiceHosts(
            region=config.region,
            base_url=config.services_base_url,
            overrides=dict(config.service_urls),
        )
        return cls(client, hosts=hosts, retry=retry, rng=rng, owns_client=True)

    async def aclose(self) -> None:
        """Close the connection pool (only when this object created the client)."""
        if self._owns_client:
            await self._client.aclose()

    async def request(self, product: Product | str, method: str, path: str,
                      **options: Any) -> Reply:
        """See :meth:`_request`; this counts the call in :attr:`stats` (its product,
        final status, or ``no_response``, ``error``, ``cancelled``, and its latency)."""
        started = trio.current_time()
        status = "cancelled"
        with tracing.service_span(str(product), method.upper(), path) as span:
            try:
                reply = await self._request(product, method, path, **options)
                status = str(reply.status)
                span.set_attribute("http.response.status_code", reply.status)
                return reply
            except ServiceError as exc:
                status = str(exc.status) if exc.status is not None else "no_response"
                if exc.status is not None:
                    span.set_attribute("http.response.status_code", exc.status)
                raise
            except Exception:
                status = "error"
                raise
            finally:
                self.stats.observe(str(product), status, trio.current_time() - started)

    async def _request(
        self,
        product: Product | str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str | list[str]] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool | None = None,
    ) -> Reply:
        """Send one request (retrying as the policy allows) and return the 2xx reply.

        ``path`` starts with ``/`` and excludes the host. ``params`` values may be lists
        (repeated query parameters); ``None`` values are dropped. ``idempotent=True``
        declares a POST that only reads (a search, a lookup) safe to retry.

        Raises :class:`NotFound` (404), :class:`Conflict` (409), :class:`RateLimited`
        (429), :class:`ServiceUnavailable` (5xx or no answer), :class:`BadResponse` (a 2xx
        whose body is not JSON, or an answer that cannot be decoded) or
        :class:`ServiceError` (any other status, or a request that cannot be encoded; it
        is not sent). Ids in ``path`` must already be encoded with :func:`path_segment`.
        """
        method = method.upper()
        service = str(product)
        url = self.hosts.url_for(product) + path
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        if idempotent is None:
            idempotent = method in _SAFE_METHODS or idempotency_key is not None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        context: dict[str, Any] = {"service": service, "method": method, "url_path": path}

        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.max_attempts
            try:
                response = await self._client.request(
                    method, url, params=query, json=json_body, data=form, headers=headers
                )
            except (httpx.InvalidURL, UnicodeEncodeError) as exc:
                # the request cannot be built (a lone surrogate in the body or the
                # query): sending it again would fail the same way
                raise ServiceError(f"request not sent: {type(exc).__name__}: {exc}",
                                   status=None, **context) from None
            except httpx.RequestError as exc:
                unsent = isinstance(exc, _UNSENT_ERRORS)
                kind = ServiceUnavailable if isinstance(exc, httpx.TransportError) else (
                    BadResponse)  # e.g. DecodingError: the body is corrupt
                error: ServiceError = kind(
                    f"{type(exc).__name__}: {_describe(exc)}", status=None, **context
                )
                if last or not (unsent or idempotent):
                    raise error from None
                delay = self.retry.backoff(attempt, self._rng)
            else:
                if response.is_success:
                    return self._reply(response, context)
                error = _status_error(response, context)
                retry_after = _retry_after(response)
                if (
                    last
                    or response.status_code not in _RETRY_STATUSES
                    or not idempotent
                    or (retry_after is not None and retry_after > self.retry.max_retry_after)
                ):
                    raise error
                delay = (
                    retry_after if retry_after is not None
                    else self.retry.backoff(attempt, self._rng)
                )
            self.stats.retries[service] = self.stats.retries.get(service, 0) + 1
            logger.info(
                "%s %s %s failed (%s); retry %d of %d in %.2f s",
                service, method, path, error.status or "no response", attempt,
                self.retry.max_attempts - 1, delay,
            )
            await trio.sleep(delay)

    @staticmethod
    def _reply(response: httpx.Response, context: Mapping[str, Any]) -> Reply:
        request_id = response.headers.get(REQUEST_ID_HEADER)
        reply_context = dict(context, status=response.status_code, request_id=request_id)
        body: Any = None
        if response.content.strip():
            try:
                body = json.loads(response.content)
            except ValueError:
                kind = response.headers.get("content-type", "unknown content type")
                raise BadResponse(
                    f"expected JSON, got {kind}: {_snippet(response.text)!r}", **reply_context
                ) from None
        logger.debug(
            "%s %s %s -> %d (request id %s)", context["service"], context["method"],
            context["url_path"], response.status_code, request_id,
        )
        return Reply(body=body, headers=response.headers, **reply_context)


def _status_error(response: httpx.Response, context: Mapping[str, Any]) -> ServiceError:
    """The typed error for a non-2xx response."""
    status = response.status_code
    request_id = response.headers.get(REQUEST_ID_HEADER)
    message, code = _error_body(response)
    kwargs: dict[str, Any] = dict(context, status=status, request_id=request_id, code=code)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 409:
        return Conflict(
            message,
            conflicting_resource_id=response.headers.get("X-Conflicting-Resource-Id"),
            **kwargs,
        )
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(response), **kwargs)
    if status >= 500:
        return ServiceUnavailable(message, **kwargs)
    return ServiceError(message, **kwargs)


def _error_body(response: httpx.Response) -> tuple[str, int | None]:
    """Twilio's error message and code when the body is a Twilio error object."""
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = data.get("message")
        code = data.get("code")
        if isinstance(message, str) and message:
            return message, code if isinstance(code, int) else None
    text = _snippet(response.text)
    return (f"{response.reason_phrase}: {text}" if text else response.reason_phrase), None


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds; HTTP dates and garbage are ignored."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _snippet(text: str, limit: int = 120) -> str:
    """A short, tag-free excerpt of a body for an error message."""
    flat = _SPACE.sub(" ", _TAG.sub(" ", text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _describe(exc: httpx.RequestError) -> str:
    return str(exc) or "no details"
