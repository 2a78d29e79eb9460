# pgmbot in a container: `docker build -t pgmbot .` then see compose.yaml (README: Docker).
# Two stages: the build tools stay in the first; the image runs as an unprivileged user.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY alembic ./alembic
RUN python -m venv /opt/pgmbot \
    && /opt/pgmbot/bin/pip install --no-cache-dir --disable-pip-version-check '.[postgres]'

FROM python:3.12-slim
ENV PATH=/opt/pgmbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pgmbot --create-home pgmbot \
    && mkdir -p /var/lib/pgmbot/db /var/lib/pgmbot/recordings /etc/pgmbot/rules \
    && chown -R pgmbot:pgmbot /var/lib/pgmbot
COPY --from=build /opt/pgmbot /opt/pgmbot
COPY rules/starter.yaml /etc/pgmbot/rules/starter.yaml
COPY deploy/config.container.yaml /etc/pgmbot/config.yaml
WORKDIR /var/lib/pgmbot
USER pgmbot
# The database (SQLite), the recordings (the engine's write-ahead log) and the rules.
VOLUME ["/var/lib/pgmbot/db", "/var/lib/pgmbot/recordings", "/etc/pgmbot/rules"]
# /metrics and /healthz (metrics.listen in the config).
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot.health", "http://127.0.0.1:9464/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["pgmbot"]
CMD ["run", "--config", "/etc/pgmbot/config.yaml"]
