# One catalog-enrich worker (the `catalog` command; `catalog worker` by default). Built by compose.yaml.
#   docker build -t catalog-enrich .
# CPU wheels of torch/torchvision by default; for CUDA build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# the pinned dependencies first, from pyproject.toml alone, so a code change does not reinstall torch
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && pip install --extra-index-url "$TORCH_INDEX" -r /tmp/requirements.txt

COPY README.md LICENSE ./
COPY streams ./streams
COPY processors ./processors
COPY model_store ./model_store
RUN pip install --no-deps . && rm -rf /app/build

RUN useradd --system --create-home --uid 10001 catalog && mkdir -p /data && chown catalog /data
USER catalog
WORKDIR /data
# In a container the metrics/health port must listen beyond loopback so Prometheus (another container)
# can scrape it; compose publishes it on the host's 127.0.0.1 only.
ENV CATALOG_METRICS_HOST=0.0.0.0 \
    CATALOG_METRICS_PORT=9108 \
    CATALOG_WORKER_STATE_DIR=/data/worker-state
EXPOSE 9108
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/readyz', timeout=2)"
ENTRYPOINT ["catalog"]
CMD ["worker"]
