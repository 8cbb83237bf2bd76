"""The request path, steps 1-8 of the architecture, behind one `Pipeline.handle(call)` that every entrance uses: the
task routes, the SSE stream and the OpenAI route (serving.router), batch lines (serving.router.batches) and the KServe
server (serving.kserve_server).

- path.py: `Call` and `Pipeline`: checks, admission, the deployment's queue, the deadline, then the task's steps;
- steps.py: what each task does for one request: redact, compose, call the backend, validate, respond;
- admission.py: per-tenant limits; scheduler.py and fairshare.py: the queue in front of each task deployment.
"""

from serving.pipeline.admission import TenantLimiter
from serving.pipeline.path import Call, Pipeline, Result, estimate_tokens
from serving.pipeline.scheduler import Gates, build_gates

__all__ = ["Call", "Gates", "Pipeline", "Result", "TenantLimiter", "build_gates", "estimate_tokens"]
