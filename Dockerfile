# syntax=docker/dockerfile:1
# Stage 1: build the wheel (it carries the migrations inside the package).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Stage 2: the runtime. The service runs as root only so that it can run every agent as another,
# unprivileged user (tasksgodzilla-agent): agents then cannot read the service's environment, the
# data directory's secrets or the database socket. Run the image with `--user` to give that up:
# agents then share the service's user and everything it can read (see README, "Isolation").
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --user-group --no-create-home --home-dir /nonexistent \
        --shell /bin/bash tasksgodzilla-agent \
    # The embedded PostgreSQL's server user (when no database URL is set), with a uid that stays the
    # same from one container to the next (the wheel would otherwise create it at run time).
    && useradd --system --uid 10003 --user-group --no-create-home --home-dir /nonexistent \
        --shell /bin/bash embedded_postgres \
    && mkdir /data && chmod 0711 /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# As root, agents run as tasksgodzilla-agent by default (TASKSGODZILLA_AGENT_USER).
ENV TASKSGODZILLA_HOST=0.0.0.0 \
    TASKSGODZILLA_PORT=8011 \
    TASKSGODZILLA_DATA_DIR=/data \
    TASKSGODZILLA_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 8011
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('TASKSGODZILLA_PORT', '8011'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status == 200 else 1)"]
CMD ["tasksgodzilla", "serve"]
