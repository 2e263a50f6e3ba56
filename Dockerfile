# Whistle: one image for every app process of compose.yaml (web, ingest, worker, migrate).
#   docker build -t whistle .
# The default command serves HTTP and websockets with daphne; compose overrides it per service.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the project and its pinned dependencies ------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the code does not reinstall them.
# constraints.txt pins the versions CI tested; the wildcard keeps the build working without it.
COPY pyproject.toml constraints.txt* README.md* ./
RUN set -eu; \
    if [ -f constraints.txt ]; then set -- -c constraints.txt; else set --; fi; \
    python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt; \
    pip install "$@" -r /tmp/requirements.txt

# Only the packages pyproject.toml ships ([tool.setuptools.packages.find]); copying them by name
# keeps .env, .git and local virtualenvs out of the image. Add a new top-level package here.
COPY command ./command
COPY streams ./streams
COPY alerts ./alerts
COPY incidents ./incidents
COPY intake ./intake
COPY supervision ./supervision
COPY api ./api
COPY demo ./demo
COPY frontend ./frontend
RUN set -eu; \
    if [ -f constraints.txt ]; then set -- -c constraints.txt; else set --; fi; \
    pip install "$@" . \
    && pip check

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=command.settings \
    WHISTLE_ENV=production \
    WHISTLE_DATA_DIR=/data \
    STATIC_ROOT=/app/static

# A fixed uid/gid so a bind-mounted /data can be chowned on the host to match.
RUN groupadd --system --gid 10001 whistle \
    && useradd --system --uid 10001 --gid whistle --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin whistle \
    && mkdir -p /data /app/static \
    && chown whistle:whistle /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /app

# Static files are collected into the image (outside /data, so a volume on /data cannot hide
# a newer release's files) and stay owned by root: the app only reads them.
# Settings read DATABASE_URL when they are imported and would otherwise start an embedded
# PostgreSQL; collectstatic never connects, so a placeholder URL is enough. Development mode and
# a placeholder key keep production's secret-key check and key file out of the build.
RUN DATABASE_URL=postgres://build@localhost/build \
    WHISTLE_ENV=development \
    SECRET_KEY=collectstatic-only-not-a-secret \
    whistle collectstatic --noinput

USER whistle

EXPOSE 8000

CMD ["whistle", "serve", "--host", "0.0.0.0", "--port", "8000"]
