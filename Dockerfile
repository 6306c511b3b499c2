# A slim image serving a TAC app: docker build -t tac-actors . && docker run -p 8000:8000 \
#   -e TWILIO_AUTH_TOKEN=... -e TWILIO_VOICE_PUBLIC_DOMAIN=agent.example.com tac-actors
# The app to serve is APP (default: the echo example); mount or COPY your own file and set
# APP=/app/agent.py:tac. See README "Going live".
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY tac_actors ./tac_actors
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    APP=/app/examples/echo.py:tac PORT=8000 LOG_FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tac
WORKDIR /app
COPY --chown=tac:tac examples ./examples
USER tac
EXPOSE 8000
# /health answers 200 once the runtime is up ("starting" before); stdlib only, no curl
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health', timeout=2); sys.exit(0 if b'\"ok\"' in r.read() else 1)"]
# sh for the variables; `exec` replaces the shell, so tac-actors is PID 1 and gets the
# SIGTERM of `docker stop` (it drains conversations, then exits)
CMD ["sh", "-c", "exec tac-actors serve \"$APP\" --host 0.0.0.0 --port \"$PORT\" --log-format \"$LOG_FORMAT\""]
