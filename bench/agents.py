"""Bench agents for OUR server, loaded by ``tac-actors serve bench/agents.py:<name>``.

TODO(lead): define these with the tac_actors API. ``bench/side_by_side.py`` starts
``.venv/bin/tac-actors serve bench/agents.py:{agent}_tac --port {port}`` and expects
the same behaviour as ``bench/reference_server.py`` and ``bench/toy_server.py``:

``echo_tac``
    Answers every prompt with one frame ``{"type":"text","token":"echo: <prompt>","last":true}``.

``stream_tac``
    Streams ``BENCH_STREAM_TOKENS`` (default 30) tokens ``"tok0 "``, ``"tok1 "``, ... with
    ``last: false``, ``BENCH_TOKEN_DELAY_MS`` (default 0) apart, then an empty ``last: true``.
    Read both environment variables when the reply starts (the bench sets them per scenario).
    An ``interrupt`` must stop the reply and be acknowledged with an empty ``text`` frame with
    ``last: true`` (also when no reply is in flight, as the reference does).

Both
    Voice WebSocket at ``/ws`` on 127.0.0.1; ``X-Twilio-Signature`` validated with the auth
    token from the ``TWILIO_AUTH_TOKEN`` environment variable (the bench signs
    ``ws://127.0.0.1:<port>/ws``); log at WARNING or quieter (the reference runs at WARNING).
"""
