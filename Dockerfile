# driftline: the monitoring daemon (`driftline run`) and its other commands.
#
#   docker build -t driftline .
#   docker run --rm -p 9108:9108 -e DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS=broker:9092 driftline
#
# Settings come from DRIFTLINE_* variables (see README, "Configuration") or from a
# YAML file mounted into the container and named with --config or $DRIFTLINE_CONFIG.

# The build stage installs driftline and its dependencies into a virtual environment;
# the final stage copies only that, so no sources or build tools ship in the image.
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor/ monitor/
COPY detectors/ detectors/
RUN pip install .


FROM python:3.11-slim-bookworm

# A fixed, non-root uid: volumes and orchestrators (runAsNonRoot) can rely on it.
RUN groupadd --system --gid 10001 driftline \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/driftline --shell /usr/sbin/nologin driftline \
    && mkdir -p /var/lib/driftline \
    && chown 10001:10001 /var/lib/driftline

COPY --from=build /opt/venv /opt/venv

# In a container the HTTP endpoints must listen beyond loopback to be scraped.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRIFTLINE_HTTP__HOST=0.0.0.0 \
    DRIFTLINE_HTTP__PORT=9108 \
    DRIFTLINE_STATE__DIR=/var/lib/driftline

WORKDIR /var/lib/driftline
USER 10001:10001

EXPOSE 9108

# The slim image has no curl; urlopen raises (exit 1) on a refused connection or a
# non-2xx answer, e.g. 503 when the consume loop has stalled.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]

ENTRYPOINT ["driftline"]
CMD ["run"]
