"""G.711 μ-law ↔ 16-bit linear PCM, as Twilio Media Streams carry audio.

``audioop`` is gone from Python 3.13, and the codec is two small tables: decoding is one
``bytes.translate``-like look-up per sample through a 256-entry table, encoding one
look-up through a 16,384-entry table indexed by the sample's top 14 bits (μ-law keeps
no more precision than that). No dependency, and fast enough for a call (160 samples per
20 ms frame): pure Python at a few microseconds per frame.

Realtime voice models that take ``g711_ulaw`` themselves (OpenAI Realtime does) need no
conversion at all; these functions serve the rest (and tests that generate tones).
"""

from __future__ import annotations

import array
import sys

__all__ = ["linear_to_ulaw", "ulaw_to_linear"]

_BIAS = 0x84
_CLIP = 32635


def _decode_one(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    sample = ((mantissa << 3) + _BIAS) << exponent
    sample -= _BIAS
    return -sample if sign else sample


def _encode_one(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


_DECODE = array.array("h", [_decode_one(b) for b in range(256)])
# indexed by (sample >> 2) + 8192, i.e. the top 14 bits of a signed 16-bit sample
_ENCODE = bytes(_encode_one((i - 8192) << 2) for i in range(16384))


def ulaw_to_linear(data: bytes) -> bytes:
    """μ-law bytes → 16-bit signed little-endian PCM (twice as many bytes)."""
    table = _DECODE
    out = array.array("h", [table[b] for b in data])
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def linear_to_ulaw(data: bytes) -> bytes:
    """16-bit signed little-endian PCM → μ-law bytes (half as many). A trailing odd byte
    is ignored."""
    samples = array.array("h")
    samples.frombytes(data[: len(data) & ~1])
    if sys.byteorder == "big":
        samples.byteswap()
    table = _ENCODE
    return bytes([table[(s >> 2) + 8192] for s in samples])
