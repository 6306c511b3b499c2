"""Tests for X-Twilio-Signature: known vectors, tampering, ports, JSON bodies, public URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tac_actors.protocol.signature import (
    SignatureValidator,
    body_sha256,
    compute_signature,
    public_url,
    validate_json_request,
    validate_signature,
    validate_websocket,
)

TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def reference_signature(token: str, payload: str) -> str:
    """Independent HMAC-SHA1/base64, built directly from hmac and hashlib."""
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# -- known vectors ---------------------------------------------------------------------


def test_twilio_documented_example() -> None:
    payload = DOC_URL + "".join(name + DOC_PARAMS[name] for name in sorted(DOC_PARAMS))
    assert reference_signature(TOKEN, payload) == DOC_SIGNATURE
    assert compute_signature(TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert validate_signature(TOKEN, DOC_URL, DOC_SIGNATURE, DOC_PARAMS)


def test_url_only_signature() -> None:
    url = "wss://example.com/ws?tenant=acme"
    assert compute_signature(TOKEN, url) == reference_signature(TOKEN, url)
    assert compute_signature(TOKEN, url, {}) == reference_signature(TOKEN, url)


def test_repeated_params_contribute_name_and_value_per_sorted_value() -> None:
    url = "https://h/x"
    params = {"b": "2", "a": ["z", "y"]}
    expected = reference_signature(TOKEN, url + "ay" + "az" + "b2")
    assert compute_signature(TOKEN, url, params) == expected
    assert validate_signature(TOKEN, url, expected, {"a": ("y", "z"), "b": ["2"]})


def test_empty_token_refused() -> None:
    with pytest.raises(ValueError):
        compute_signature("", "https://h/")
    with pytest.raises(ValueError):
        SignatureValidator("")


# -- tampering -------------------------------------------------------------------------


def test_changed_param_fails() -> None:
    assert not validate_signature(TOKEN, DOC_URL, DOC_SIGNATURE, {**DOC_PARAMS, "Digits": "1235"})
    assert not validate_signature(TOKEN, DOC_URL, DOC_SIGNATURE, {**DOC_PARAMS, "Extra": "1"})
    missing = {k: v for k, v in DOC_PARAMS.items() if k != "To"}
    assert not validate_signature(TOKEN, DOC_URL, DOC_SIGNATURE, missing)


def test_changed_url_or_token_fails() -> None:
    assert not validate_signature(TOKEN, DOC_URL + "&baz=3", DOC_SIGNATURE, DOC_PARAMS)
    assert not validate_signature(
        TOKEN, DOC_URL.replace("https", "http"), DOC_SIGNATURE, DOC_PARAMS
    )
    assert not validate_signature("54321", DOC_URL, DOC_SIGNATURE, DOC_PARAMS)


@pytest.mark.parametrize("signature", [None, "", "garbage", "é" * 28, DOC_SIGNATURE + " "])
def test_missing_or_malformed_signature_fails(signature: str | None) -> None:
    assert not validate_signature(TOKEN, DOC_URL, signature, DOC_PARAMS)


# -- default ports ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed", "received"),
    [
        ("https://h.example/x?y=1", "https://h.example:443/x?y=1"),
        ("https://h.example:443/x?y=1", "https://h.example/x?y=1"),
        ("http://h.example/x", "http://h.example:80/x"),
        ("wss://h.example/ws", "wss://h.example:443/ws"),
        ("ws://h.example:80/ws", "ws://h.example/ws"),
        ("https://[::1]/x", "https://[::1]:443/x"),
    ],
)
def test_default_port_variants_accepted(signed: str, received: str) -> None:
    signature = reference_signature(TOKEN, signed)
    assert validate_signature(TOKEN, received, signature)
    assert validate_websocket(TOKEN, received, signature)


@pytest.mark.parametrize(
    ("signed", "received"),
    [
        ("https://h.example/x", "https://h.example:8443/x"),
        ("https://h.example:8443/x", "https://h.example/x"),
        ("https://h.example/x", "https://h.example:80/x"),
        ("http://h.example/x", "http://h.example:443/x"),
    ],
)
def test_non_default_ports_not_interchangeable(signed: str, received: str) -> None:
    assert not validate_signature(TOKEN, received, reference_signature(TOKEN, signed))


# -- JSON bodies -----------------------------------------------------------------------

BODY = b'{"CallSid": "CA123", "note": "caf\xc3\xa9"}'


def json_url(body: bytes = BODY) -> str:
    return "https://h.example/webhook?tenant=a&bodySHA256=" + hashlib.sha256(body).hexdigest()


def test_body_sha256() -> None:
    assert body_sha256(BODY) == hashlib.sha256(BODY).hexdigest()


def test_json_request_valid() -> None:
    url = json_url()
    signature = reference_signature(TOKEN, url)  # URL only, no params
    assert validate_json_request(TOKEN, url, signature, BODY)
    assert SignatureValidator(TOKEN).validate_json(url, signature, BODY)


def test_json_request_changed_body_fails() -> None:
    url = json_url()
    assert not validate_json_request(TOKEN, url, reference_signature(TOKEN, url), BODY + b" ")


def test_json_request_mismatched_hash_fails_even_if_signed() -> None:
    url = json_url(b"other body")
    assert not validate_json_request(TOKEN, url, reference_signature(TOKEN, url), BODY)


def test_json_request_missing_body_hash_fails() -> None:
    url = "https://h.example/webhook?tenant=a"
    assert not validate_json_request(TOKEN, url, reference_signature(TOKEN, url), BODY)


def test_json_request_bad_signature_fails() -> None:
    url = json_url()
    assert not validate_json_request(TOKEN, url, reference_signature("nope", url), BODY)
    assert not validate_json_request(TOKEN, url, None, BODY)


# -- public URL ------------------------------------------------------------------------


def test_public_url_from_request() -> None:
    url = public_url(
        scheme="http",
        host="127.0.0.1:8080",
        path_and_query="/twiml?a=1",
        headers={},
        public_domain=None,
    )
    assert url == "http://127.0.0.1:8080/twiml?a=1"
    ws = public_url(
        scheme="https",
        host="h",
        path_and_query="/ws",
        headers={},
        public_domain=None,
        websocket=True,
    )
    assert ws == "wss://h/ws"


def test_public_url_forwarded_headers_case_insensitive_first_value() -> None:
    headers = {"x-forwarded-proto": "https, http", "X-FORWARDED-HOST": "public.example, proxy"}
    url = public_url(
        scheme="http",
        host="internal:8000",
        path_and_query="/twiml",
        headers=headers,
        public_domain=None,
        forwarded=True,
    )
    assert url == "https://public.example/twiml"
    ws = public_url(
        scheme="ws",
        host="internal:8000",
        path_and_query="/ws?x=1",
        headers=headers,
        public_domain=None,
        websocket=True,
        forwarded=True,
    )
    assert ws == "wss://public.example/ws?x=1"


def test_public_url_forwarded_headers_fall_back_independently() -> None:
    only_proto = public_url(
        scheme="http",
        host="h:1",
        path_and_query="/x",
        headers={"X-Forwarded-Proto": "https"},
        public_domain=None,
        forwarded=True,
    )
    assert only_proto == "https://h:1/x"
    only_host = public_url(
        scheme="http",
        host="h:1",
        path_and_query="/x",
        headers={"X-Forwarded-Host": "p"},
        public_domain=None,
        websocket=True,
        forwarded=True,
    )
    assert only_host == "ws://p/x"


@pytest.mark.parametrize(
    "domain",
    ["public.example", "https://public.example/", "wss://public.example", "public.example/"],
)
def test_public_domain_wins(domain: str) -> None:
    headers = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "proxy"}
    common = {"scheme": "http", "host": "internal", "headers": headers, "public_domain": domain}
    assert public_url(path_and_query="/twiml", **common) == "https://public.example/twiml"  # type: ignore[arg-type]
    assert (
        public_url(path_and_query="/ws?t=1", websocket=True, **common)  # type: ignore[arg-type]
        == "wss://public.example/ws?t=1"
    )


def test_public_url_then_validate_websocket() -> None:
    signed = "wss://public.example/ws?tenant=acme"
    signature = reference_signature(TOKEN, signed)
    rebuilt = public_url(
        scheme="ws",
        host="10.0.0.5:8000",
        path_and_query="/ws?tenant=acme",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"},
        public_domain=None,
        websocket=True,
        forwarded=True,
    )
    assert SignatureValidator(TOKEN).validate_websocket(rebuilt, signature)


def test_forwarded_headers_are_ignored_unless_the_peer_is_trusted() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "other-app.example"}
    rebuilt = public_url(scheme="http", host="ours.example", path_and_query="/twiml",
                         headers=headers, public_domain=None)
    assert rebuilt == "http://ours.example/twiml"


# -- SignatureValidator ----------------------------------------------------------------


def test_validator_repr_hides_token() -> None:
    validator = SignatureValidator("super-secret-token")
    assert "super-secret-token" not in repr(validator)
    assert "super-secret-token" not in str(validator)


def test_validator_form() -> None:
    validator = SignatureValidator(TOKEN)
    assert validator.sign(DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert validator.validate_form(DOC_URL, DOC_SIGNATURE, DOC_PARAMS)
    assert not validator.validate_form(DOC_URL, DOC_SIGNATURE, None)


# -- properties ------------------------------------------------------------------------

URL_CHARS = "abcXYZ019-._~!$&'()*+,;=:@/%"
urls = st.builds(
    lambda scheme, host, port, path, query: f"{scheme}://{host}{port}/{path}{query}",
    st.sampled_from(["http", "https", "ws", "wss"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){1,2}", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.text(URL_CHARS, max_size=20),
    st.one_of(st.just(""), st.text(URL_CHARS + "?", max_size=30).map(lambda q: "?" + q)),
)
param_values = st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=3))
params = st.dictionaries(st.text(min_size=1, max_size=10), param_values, max_size=6)
tokens = st.text(min_size=1, max_size=40)


@given(token=tokens, url=urls, form=params)
def test_validate_accepts_what_compute_produces(
    token: str, url: str, form: dict[str, str | list[str]]
) -> None:
    signature = compute_signature(token, url, form)
    assert validate_signature(token, url, signature, form)
    assert SignatureValidator(token).validate_form(url, signature, form)


@given(token=tokens, url=urls, form=params, data=st.data())
def test_any_mutation_of_the_signature_fails(
    token: str, url: str, form: dict[str, str | list[str]], data: st.DataObject
) -> None:
    signature = compute_signature(token, url, form)
    index = data.draw(st.integers(0, len(signature) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != signature[index]))
    mutated = signature[:index] + replacement + signature[index + 1 :]
    assert not validate_signature(token, url, mutated, form)
    truncated = signature[: data.draw(st.integers(0, len(signature) - 1))]
    assert not validate_signature(token, url, truncated, form)


@given(token=tokens, url=urls, body=st.binary(max_size=200))
def test_json_validate_accepts_what_compute_produces(token: str, url: str, body: bytes) -> None:
    sep = "&" if "?" in url else "?"
    signed = f"{url}{sep}bodySHA256={body_sha256(body)}"
    signature = compute_signature(token, signed)
    assert validate_json_request(token, signed, signature, body)
    assert not validate_json_request(token, signed, signature, body + b"x")
