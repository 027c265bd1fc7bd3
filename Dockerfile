# syntax=docker/dockerfile:1
# The passerelle platform server: web UI, REST API and API docs on one port.
#
#   docker build -t passerelle .
#   docker run -p 5050:5050 -e PASSERELLE_ADMIN_KEY="$(openssl rand -hex 24)" \
#       -v passerelle:/var/lib/passerelle passerelle
#
# The image listens on 0.0.0.0, so the server requires API keys: give it PASSERELLE_ADMIN_KEY
# (or create keys in its database first). Every other setting is a PASSERELLE_* variable too
# (docs/settings.md): PASSERELLE_DATABASE_URL for PostgreSQL, PASSERELLE_ARTIFACT_ROOT for S3.

ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# -- build: a virtual environment with exactly what uv.lock says, no dev tools ------------------
FROM python:${PYTHON_VERSION}-slim AS build
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first, from the lock only: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

# -- runtime: the environment alone, run by an unprivileged user --------------------------------
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="passerelle" \
      org.opencontainers.image.description="Self-hosted MLOps platform: tracking, registry, serving." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 passerelle \
 && useradd --system --uid 10001 --gid passerelle --home-dir /var/lib/passerelle \
    --create-home --shell /usr/sbin/nologin passerelle
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PASSERELLE_HOME=/var/lib/passerelle \
    PASSERELLE_HOST=0.0.0.0 \
    PASSERELLE_PORT=5050
USER 10001:10001
WORKDIR /var/lib/passerelle
VOLUME ["/var/lib/passerelle"]
EXPOSE 5050
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5050/healthz', timeout=4)"]
ENTRYPOINT ["passerelle", "server"]
