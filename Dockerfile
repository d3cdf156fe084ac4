# The service's image: the Procfile's processes, as a non-root user, installed with constraints.txt.
#   docker build -t wandstore-agents .
#   docker run --env-file deploy/env.production -e REDIS_URL=... -p 8000:8000 wandstore-agents
#   docker run ... wandstore-agents worker        (or: interactive; see docs/operations.md)
# Secrets come from the platform's secret store, never from a file in the image.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY adapters ./adapters
COPY domain ./domain
COPY agents ./agents
COPY pipelines ./pipelines
COPY entrypoints ./entrypoints
# Every dependency at the version constraints.txt pins; no dev extra (no dev gateway, no tests).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMPTS_DIR=/app/prompts \
    LOCAL_STORE_DIR=/app/var/objects \
    LOCAL_BACKUP_DIR=/app/var/backups \
    PORT=8000
RUN groupadd --system --gid 10001 wandstore \
    && useradd --system --uid 10001 --gid wandstore --home-dir /app --shell /usr/sbin/nologin wandstore
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY prompts ./prompts
COPY Procfile ./Procfile
COPY deploy/run-process deploy/healthcheck.py ./deploy/
RUN mkdir -p /app/var && chown wandstore:wandstore /app/var
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["/app/deploy/run-process"]
CMD ["web"]
