"""Request helpers shared by the emulator's routes: body parsing and pagination."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from quart import request

from tac_actors.emulator.db import ApiError

__all__ = ["json_object", "optional_str", "page", "required_str"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


async def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object (else 400)."""
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return data


def required_str(data: Mapping[str, Any], key: str, *, where: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"Missing required parameter {where}{key}")
    return value


def optional_str(data: Mapping[str, Any], key: str, *, where: str = "") -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"Parameter {where}{key} must be a string")
    return value


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        kind, _, number = base64.urlsafe_b64decode(padded).decode().partition(":")
        offset = int(number)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid pageToken") from None
    if kind != "offset" or offset < 0:
        raise ApiError(400, "Invalid pageToken")
    return offset


def page(items: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    """One page of ``items`` under ``key`` with ``meta{key,pageSize,nextToken,
    previousToken}``, driven by the ``pageSize`` and ``pageToken`` query parameters."""
    raw_size = request.args.get("pageSize")
    try:
        size = int(raw_size) if raw_size is not None else DEFAULT_PAGE_SIZE
    except ValueError:
        raise ApiError(400, "pageSize must be an integer") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(400, f"pageSize must be within 1..{MAX_PAGE_SIZE}")
    token = request.args.get("pageToken")
    offset = _decode(token) if token else 0
    chunk = list(items[offset: offset + size])
    return {
        key: chunk,
        "meta": {
            "key": key,
            "pageSize": size,
            "nextToken": _encode(offset + size) if offset + size < len(items) else None,
            "previousToken": _encode(max(offset - size, 0)) if offset > 0 else None,
        },
    }
