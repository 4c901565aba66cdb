# syntax=docker/dockerfile:1
# The router image: `router serve` with the Python 3.11 and Node.js 20 runtimes, as a non-root user.
#
#   docker build -t router .                       # the runtime image (the last stage)
#   docker run --init -p 9000:9000 -v "$PWD/my-stack:/etc/router:ro" router
#
# The config is read from /etc/router/router.yaml (mount yours; server.host must be 0.0.0.0 to be reachable),
# state goes to /var/lib/router (mount a volume). compose/docker-compose.yml builds this image for its
# router, and the `e2e` stage for the end-to-end suite. Base images are pinned to exact versions.

FROM node:20.18.1-bookworm-slim AS node

# Stage 1: wheels of the package and of every runtime dependency, so that the final stage needs no compiler,
# no build tools and no network.
FROM python:3.11.11-slim-bookworm AS wheels
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
# boto3 is not a dependency of the router: it is there for functions, as in Lambda's Python runtimes.
RUN pip wheel --wheel-dir /wheels . boto3

# The e2e suite's own dependencies, on top (only the `e2e` target builds this).
FROM wheels AS e2e-wheels
RUN pip wheel --wheel-dir /wheels "pytest>=8.2" "pytest-asyncio>=0.23.7" "pytest-timeout>=2.3.1"

# The end-to-end suite (tests/e2e), run from inside the compose network: `docker compose run --rm e2e`.
FROM python:3.11.11-slim-bookworm AS e2e
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# DL3013 (pin versions): --no-index installs exactly the wheels the stage above resolved.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=e2e-wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels router boto3 pytest pytest-asyncio pytest-timeout \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp router \
    && mkdir -p /data/uploads && chown 10001:10001 /data/uploads
WORKDIR /suite
COPY pyproject.toml ./
COPY tests/__init__.py tests/conftest.py tests/support.py ./tests/
COPY tests/e2e ./tests/e2e
COPY compose/init_stack.py ./compose/
USER 10001:10001
CMD ["pytest", "-p", "no:cacheprovider", "tests/e2e"]

# The runtime image.
FROM python:3.11.11-slim-bookworm AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Node.js for nodejs20.x functions: the official binary alone (no npm); it needs only libstdc++, already here.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# DL3013 (pin versions): --no-index installs exactly the wheels the first stage resolved.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels router boto3 \
    && useradd --uid 10001 --user-group --create-home --home-dir /var/lib/router router \
    && mkdir -p /etc/router /data/uploads /var/lib/router/state \
    && chown -R 10001:10001 /var/lib/router /data/uploads \
    && node --version
WORKDIR /var/lib/router
USER 10001:10001
EXPOSE 9000 8080 2525
# Liveness of the control plane, without curl: the image's own Python asks GET /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ROUTER_PORT', '9000') + '/healthz', timeout=4)"]
ENTRYPOINT ["router"]
CMD ["serve", "-c", "/etc/router/router.yaml"]
