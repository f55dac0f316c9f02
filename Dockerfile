# One image for every service; the command chooses which one runs:
#   backoffice serve --service directory --no-migrate     (a Deployment's pod)
#   backoffice migrate                                    (the migrations Job)
# Build: docker build -t registry/backoffice:VERSION .
# Checked structurally by tests/deploy/test_dockerfile.py (no Docker engine runs in CI).

# ---- build: resolve and install the project into a virtual environment ----------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/backoffice
WORKDIR /src
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
COPY gen ./gen
COPY protos ./protos
# The OTLP exporter is in the image so that production can turn tracing on by configuration.
RUN /opt/backoffice/bin/pip install --upgrade pip \
    && /opt/backoffice/bin/pip install ".[otlp]"

# ---- runtime: the virtual environment and nothing else ----------------------------------
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="backoffice" \
      org.opencontainers.image.description="Shared back-office gRPC services for police forces and their partners" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/backoffice/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BACKOFFICE_DATA_DIR=/tmp/backoffice \
    BACKOFFICE_HOST=0.0.0.0 \
    BACKOFFICE_LOG_FORMAT=json
RUN groupadd --system --gid 10001 backoffice \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin backoffice
COPY --from=build /opt/backoffice /opt/backoffice
USER 10001:10001
WORKDIR /tmp
EXPOSE 50050 50051 50052 50053 9464
ENTRYPOINT ["backoffice"]
CMD ["serve", "--no-migrate"]
