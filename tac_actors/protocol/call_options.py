"""Calls API parameters of an outbound call (:class:`CallOptions`). No I/O.

What the call is (numbers, TwiML) is ours; everything else an app may set: machine
detection, recording, status callbacks, ring timeout, and any other Calls API parameter
passed through by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import attrs

__all__ = ["RESERVED", "CallOptions"]

#: parameters we set ourselves: an app cannot pass them through ``CallOptions.extra``
RESERVED: Final = frozenset({"To", "From", "Twiml", "Url", "ApplicationSid"})

FormValue = str | list[str]


def _pascal(name: str) -> str:
    """``machine_detection_timeout`` -> ``MachineDetectionTimeout``; a name that already
    starts with a capital is kept."""
    if name[:1].isupper():
        return name
    return "".join(part[:1].upper() + part[1:] for part in name.rstrip("_").split("_"))


def _form_value(value: Any) -> FormValue:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Sequence):
        return [str(_form_value(item)) for item in value]
    raise TypeError(f"a Calls API parameter must be a str, number, bool or list, "
                    f"not {type(value).__name__}")


def _extra(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


def _events(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(value)


@attrs.frozen(kw_only=True)
class CallOptions:
    """Calls API parameters for an outbound call. ``None`` leaves a parameter out.

    * ``machine_detection`` (``"Enable"``: report as soon as a machine is recognised, to
      hang up; ``"DetectMessageEnd"``: wait for the greeting to end, to leave a message)
      turns answering-machine detection on. Our calls run inline TwiML, so detection is
      always asynchronous: ``async_amd`` defaults to true with it, and the result reaches
      ``on_amd``. ``async_amd=True`` without ``machine_detection`` is a ``ValueError``.
    * ``record=True`` records the call; the recording reaches ``on_recording``.
    * ``status_callback_event``: the progress events to report besides the end
      (``initiated``, ``ringing``, ``answered``, ``completed``).
    * ``timeout``: seconds to ring before giving up (Twilio: 60).
    * The callback URLs default to our own routes when the matching hook is registered
      and a public URL is known (see :mod:`tac_actors.channels.call_events`).
    * ``extra``: any other Calls API parameter, by its API name (``CallerId``,
      ``TimeLimit``) or in snake case (``time_limit``); bools become ``true``/``false``,
      lists repeat the parameter. ``To``, ``From``, ``Twiml``, ``Url`` and
      ``ApplicationSid`` are ours: ``ValueError``.
    """

    machine_detection: Literal["Enable", "DetectMessageEnd"] | None = None
    async_amd: bool | None = None
    async_amd_status_callback: str | None = None
    async_amd_status_callback_method: str | None = None
    machine_detection_timeout: int | None = None
    machine_detection_speech_threshold: int | None = None
    machine_detection_speech_end_threshold: int | None = None
    machine_detection_silence_timeout: int | None = None
    record: bool | None = None
    recording_status_callback: str | None = None
    recording_status_callback_event: tuple[str, ...] | None = attrs.field(
        default=None, converter=_events)
    recording_status_callback_method: str | None = None
    recording_channels: str | None = None
    recording_track: str | None = None
    status_callback: str | None = None
    status_callback_event: tuple[str, ...] | None = attrs.field(default=None,
                                                                converter=_events)
    status_callback_method: str | None = None
    timeout: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_extra)

    def __attrs_post_init__(self) -> None:
        if self.machine_detection not in (None, "Enable", "DetectMessageEnd"):
            raise ValueError("machine_detection must be 'Enable' or 'DetectMessageEnd', "
                             f"got {self.machine_detection!r}")
        if self.async_amd and not self.machine_detection:
            raise ValueError("async_amd needs machine_detection ('Enable' or "
                             "'DetectMessageEnd')")
        if self.machine_detection and self.async_amd is False:
            raise ValueError("our calls run inline TwiML, so machine detection must be "
                             "asynchronous: leave async_amd unset or true")
        reserved = {_pascal(key) for key in self.extra} & RESERVED
        if reserved:
            raise ValueError(f"call options may not set {sorted(reserved)}: the call's "
                             "numbers and TwiML are ours")
        for key, value in self.extra.items():
            _form_value(value)  # TypeError now, not when the call is placed
            if not key:
                raise ValueError("an empty Calls API parameter name")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    def merged(self, *others: CallOptions | None) -> CallOptions:
        """These options with every parameter that ``others`` set (later ones win);
        ``extra`` dictionaries are merged key by key."""
        values = attrs.asdict(self, recurse=False)
        extra = dict(self.extra)
        for other in others:
            if other is None:
                continue
            for field in attrs.fields(CallOptions):
                value = getattr(other, field.name)
                if field.name == "extra":
                    extra.update(value)
                elif value is not None:
                    values[field.name] = value
        values["extra"] = extra
        if values["machine_detection"] is None:
            values["async_amd"] = None  # a layer above cleared detection
        return CallOptions(**values)

    def to_form(self) -> dict[str, FormValue]:
        """The Calls API form parameters, by their API names."""
        form: dict[str, FormValue] = {}
        for field in attrs.fields(CallOptions):
            if field.name == "extra":
                continue
            value = getattr(self, field.name)
            if field.name == "async_amd" and value is None and self.machine_detection:
                value = True
            if value is not None:
                form[_pascal(field.name)] = _form_value(value)
        for key, value in self.extra.items():
            form[_pascal(key)] = _form_value(value)
        return form
