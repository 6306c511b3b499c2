"""X-Twilio-Signature: compute and validate, with no I/O.

Twilio signs each request with HMAC-SHA1 keyed by the account's auth token and sends the
base64 digest in ``X-Twilio-Signature``. The signed string is the full URL Twilio
requested, followed (for form-encoded POSTs only) by every parameter name and value,
names in sorted order; a repeated parameter contributes ``name + value`` once per value,
values sorted. JSON POSTs are signed over the URL alone, and the URL carries a
``bodySHA256`` query parameter (hex SHA-256 of the raw body). The WebSocket upgrade is
signed over the ``wss://`` URL alone.

Promises:

* Every comparison of secrets-derived values is constant-time (``hmac.compare_digest``).
* Validation accepts the URL as given, and the same URL with the scheme's default port
  (443 for https/wss, 80 for http/ws) added or removed, as Twilio's own validators do;
  a non-default port is never dropped.
* An empty auth token is refused with ``ValueError``: it would make signatures forgeable.
* Malformed input (odd URLs, non-ASCII signatures) yields ``False``, never an exception.

What does not live here: reading headers from a framework request, answering 403 or
closing 1008 -- the server layer does that with :func:`public_url` and the validators.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import TypeAlias
from urllib.parse import parse_qs, urlsplit

import attrs

__all__ = [
    "Params",
    "SignatureValidator",
    "body_sha256",
    "compute_signature",
    "public_url",
    "validate_json_request",
    "validate_signature",
    "validate_websocket",
]

Params: TypeAlias = Mapping[str, str | Sequence[str]]

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def _signing_string(url: str, params: Params | None) -> str:
    if not params:
        return url
    parts = [url]
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else sorted(value)
        for item in values:
            parts.append(name)
            parts.append(item)
    return "".join(parts)


def compute_signature(auth_token: str, url: str, params: Params | None = None) -> str:
    """The base64 HMAC-SHA1 Twilio would send for ``url`` (+ form ``params``).

    ``params`` are form-encoded POST parameters (omit for GET, JSON and WebSocket
    requests); a value may be a sequence for a repeated parameter.
    Raises ``ValueError`` for an empty ``auth_token``.
    """
    if not auth_token:
        raise ValueError("auth_token must not be empty")
    payload = _signing_string(url, params).encode("utf-8")
    digest = hmac.new(auth_token.encode("utf-8"), payload, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):  # IPv6 literal: [::1]:443
        end = hostport.find("]")
        if end == -1:
            return hostport, None
        rest = hostport[end + 1 :]
        return hostport[: end + 1], (rest[1:] if rest.startswith(":") else None)
    host, sep, port = hostport.rpartition(":")
    return (host, port) if sep else (hostport, None)


def _url_variants(url: str) -> list[str]:
    """``url`` itself, plus the variant with the default port added or removed."""
    variants = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return variants
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    start = url.find("//")
    if default is None or not parts.netloc or start == -1:
        return variants
    start += 2
    if url[start : start + len(parts.netloc)] != parts.netloc:
        return variants
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _split_host_port(hostport)
    if port is None:
        new_hostport = f"{host}:{default}"
    elif port.isascii() and port.isdigit() and int(port) == default:
        new_hostport = host
    else:
        return variants
    variants.append(url[:start] + userinfo + at + new_hostport + url[start + len(parts.netloc) :])
    return variants


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


def validate_signature(
    auth_token: str, url: str, signature: str | None, params: Params | None = None
) -> bool:
    """True iff ``signature`` matches ``url`` (+ form ``params``), default port or not.

    A missing (``None``) or empty signature is never valid. Constant-time per candidate.
    """
    if not signature:
        return False
    results = [
        _same(compute_signature(auth_token, candidate, params), signature)
        for candidate in _url_variants(url)
    ]
    return any(results)


def body_sha256(body: bytes) -> str:
    """Lower-case hex SHA-256 of ``body``, as Twilio puts in ``bodySHA256``."""
    return hashlib.sha256(body).hexdigest()


def validate_json_request(auth_token: str, url: str, signature: str | None, body: bytes) -> bool:
    """Validate a JSON POST: ``bodySHA256`` in ``url`` matches ``body`` AND the URL is signed.

    Missing, repeated or mismatched ``bodySHA256`` -> ``False``.
    """
    try:
        hashes = parse_qs(urlsplit(url).query, keep_blank_values=True).get("bodySHA256", [])
    except ValueError:
        return False
    if len(hashes) != 1:
        return False
    body_ok = _same(body_sha256(body), hashes[0].lower())
    signature_ok = validate_signature(auth_token, url, signature)
    return body_ok and signature_ok


def validate_websocket(auth_token: str, url: str, signature: str | None) -> bool:
    """Validate a WebSocket upgrade: the signature covers the ``wss://`` URL (with query)."""
    return validate_signature(auth_token, url, signature)


def _first_value(header: str | None) -> str | None:
    if header is None:
        return None
    first = header.split(",", 1)[0].strip()
    return first or None


def _adapt_scheme(scheme: str, websocket: bool) -> str:
    scheme = scheme.lower()
    table = _WEBSOCKET_SCHEMES if websocket else _HTTP_SCHEMES
    return table.get(scheme, scheme)


def public_url(
    *,
    scheme: str,
    host: str,
    path_and_query: str,
    headers: Mapping[str, str],
    public_domain: str | None,
    websocket: bool = False,
    forwarded: bool = False,
) -> str:
    """Rebuild the URL Twilio requested, i.e. the one it signed.

    Priority: a configured ``public_domain`` (scheme forced to https, or wss for
    ``websocket``; any scheme prefix and trailing slash in it are dropped) >
    ``X-Forwarded-Proto`` / ``X-Forwarded-Host``, only when ``forwarded`` says the peer
    is a trusted proxy (first comma-separated value each, looked up case-insensitively,
    each falling back independently) > the request's own ``scheme`` and ``host``.
    Schemes are mapped http<->ws, https<->wss to match ``websocket``. An empty
    ``public_domain`` counts as not configured.

    ``forwarded`` defaults to ``False``: anyone can send ``X-Forwarded-Host``, and
    believing it lets a signature made for another host verify here.
    """
    if not path_and_query.startswith("/"):
        path_and_query = "/" + path_and_query
    if public_domain:
        _, sep, rest = public_domain.partition("://")
        domain = (rest if sep else public_domain).rstrip("/")
        return f"{'wss' if websocket else 'https'}://{domain}{path_and_query}"
    proto, forwarded_host = scheme, host
    if forwarded:
        lowered = {name.lower(): value for name, value in headers.items()}
        proto = _first_value(lowered.get("x-forwarded-proto")) or scheme
        forwarded_host = _first_value(lowered.get("x-forwarded-host")) or host
    return f"{_adapt_scheme(proto, websocket)}://{forwarded_host}{path_and_query}"


def _non_empty(_inst: object, _attribute: object, value: str) -> None:
    if not value:
        raise ValueError("auth_token must not be empty")


@attrs.frozen
class SignatureValidator:
    """Holds the auth token so callers need not pass it around; its repr hides the token."""

    auth_token: str = attrs.field(repr=False, validator=_non_empty)

    def sign(self, url: str, params: Params | None = None) -> str:
        """The signature Twilio would send (handy for tests and fake carriers)."""
        return compute_signature(self.auth_token, url, params)

    def validate_form(self, url: str, signature: str | None, params: Params | None) -> bool:
        """A GET or form-encoded POST; see :func:`validate_signature`."""
        return validate_signature(self.auth_token, url, signature, params)

    def validate_json(self, url: str, signature: str | None, body: bytes) -> bool:
        """A JSON POST; see :func:`validate_json_request`."""
        return validate_json_request(self.auth_token, url, signature, body)

    def validate_websocket(self, url: str, signature: str | None) -> bool:
        """A WebSocket upgrade; see :func:`validate_websocket`."""
        return validate_websocket(self.auth_token, url, signature)
