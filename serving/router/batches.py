"""Bulk endpoints `/v1/batches`: upload a JSONL file of task requests, follow its progress, read results as JSONL.

The routes reach the batch worker at `request.app.state.batches` (a serving.batches.BatchRunner, built and started in
the app's lifespan); `executor(ctx)` is the `execute` that worker calls: one line through the one request path
(serving.pipeline), as a `batch` priority class call.
"""

from __future__ import annotations

import contextlib
import json
from typing import Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException

from serving.batches import BatchRunner, BatchStore, BatchView, Execute, Quota, expires_at
from serving.errors import Forbidden, InvalidRequest
from serving.pipeline import Call
from serving.profiles.compiler import CompiledProfile
from serving.router import errors
from serving.router.auth import Tenant
from serving.router.context import RouterContext
from serving.telemetry import tracing
from serving.vocabulary.catalog import Task
from serving.vocabulary.kinds import PriorityClass
from serving.vocabulary.schemas import REQUEST_BODIES, ErrorBody
from serving.vocabulary.validation import describe, first_field

JSONL = "application/jsonl"
STATUS_HEADER = "X-Switchboard-Batch-Status"
PENDING_HEADER = "X-Switchboard-Batch-Pending"
# Content types a raw JSONL upload may arrive with (curl --data-binary sends the form type unless told otherwise).
UPLOAD_TYPES = frozenset(
    {
        JSONL,
        "application/x-ndjson",
        "application/x-jsonlines",
        "application/json-lines",
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
        "",
    }
)
BATCH = PriorityClass.BATCH.value
UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            JSONL: {
                "schema": {
                    "type": "string",
                    "pattern": "\\S",
                    "description": 'One request a line: {"custom_id": "...", "task": '
                    '"redact", "body": {...}}; an upload of blank lines only is refused (422). Each line that cannot run is '
                    "its own error in the results.",
                },
                "example": '{"custom_id": "t-1", "task": "redact", "body": {"text": "Mail me at jo@example.com"}}\n',
            }
        },
    }
}
_STATUS_OF_CODE = {**{cls.code: status for cls, status in errors.STATUS.items()}, "cancelled": 409}


class BatchCounts(BaseModel):
    total: int = Field(description="Lines (requests) in the batch; blank lines are not counted.")
    completed: int = Field(description="Lines that produced a response.")
    failed: int = Field(description="Lines that produced an error (including lines that did not parse).")
    pending: int = Field(description="Lines not finished yet (or never run, in a cancelled batch).")


class BatchInfo(BaseModel):
    id: str = Field(examples=["batch_5f0c2e9a41d7b3c8e6a1f2d4"])
    object: Literal["batch"] = "batch"
    status: Literal["queued", "running", "completed", "cancelled"]
    task: str | None = Field(description="Default task of lines that name none (`?task=` on the upload).")
    created_at: int = Field(description="Unix seconds.")
    finished_at: int | None = Field(description="Unix seconds; set when completed or cancelled.")
    expires_at: int | None = Field(description="Unix seconds when a finished batch's upload and results are removed.")
    counts: BatchCounts


class BatchDeleted(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    deleted: Literal[True] = True


def register(app: FastAPI) -> None:
    @app.post(
        "/v1/batches",
        tags=["batches"],
        status_code=202,
        response_model=BatchInfo,
        openapi_extra=UPLOAD_DOC,
        responses={415: {"model": ErrorBody, "description": "Not a raw JSONL body."}},
        summary="Submit a JSONL file of task requests (raw body, one `{custom_id?, task, body}` a line). 413 over "
        "the byte or line limit; 429 over the tenant's request limits or batch caps.",
    )
    async def create_batch(
        profile: Tenant, request: Request, task: Task | None = Query(None, description="Task of lines that name none.")
    ) -> JSONResponse:
        _check_upload(profile, request)
        runner = _runner(request)
        with _admitted(request.app.state.ctx, profile):  # checked before the body is read
            await runner.check_room(profile.tenant_id, _declared_bytes(request))
            view = await runner.submit(profile.tenant_id, await request.body(), task.value if task else None)
        return JSONResponse(
            _info(view, request).model_dump(), status_code=202, headers={"Location": f"/v1/batches/{view.meta.id}"}
        )

    @app.get("/v1/batches", tags=["batches"], response_model=list[BatchInfo], summary="Your batches, oldest first.")
    async def list_batches(profile: Tenant, request: Request) -> list[BatchInfo]:
        return [_info(view, request) for view in await _runner(request).batches(profile.tenant_id)]

    @app.get(
        "/v1/batches/{batch_id}", tags=["batches"], response_model=BatchInfo, summary="Status and progress of a batch."
    )
    async def get_batch(batch_id: str, profile: Tenant, request: Request) -> BatchInfo:
        return _info(await _runner(request).status(batch_id, profile.tenant_id), request)

    @app.get(
        "/v1/batches/{batch_id}/results",
        tags=["batches"],
        response_class=Response,
        responses={200: {"content": {JSONL: {}}, "description": "One JSON record a line, in input order."}},
        summary="Results as JSONL in input order; while running, the lines finished so far (see the status header).",
    )
    async def batch_results(batch_id: str, profile: Tenant, request: Request) -> Response:
        view, records = await _runner(request).results(batch_id, profile.tenant_id)
        body = "".join(json.dumps(_with_status(r), ensure_ascii=False) + "\n" for r in records)
        headers = {STATUS_HEADER: view.meta.status.value, PENDING_HEADER: str(view.progress.pending)}
        return Response(body, media_type=JSONL, headers=headers)

    @app.post(
        "/v1/batches/{batch_id}/cancel",
        tags=["batches"],
        response_model=BatchInfo,
        summary="Cancel a queued or running batch; finished lines keep their results.",
    )
    async def cancel_batch(batch_id: str, profile: Tenant, request: Request) -> BatchInfo:
        return _info(await _runner(request).cancel(batch_id, profile.tenant_id), request)

    @app.delete(
        "/v1/batches/{batch_id}",
        tags=["batches"],
        response_model=BatchDeleted,
        summary="Delete a batch: a running one stops (its lines in flight are cancelled on the replicas), then "
        "its upload and results are removed.",
    )
    async def delete_batch(batch_id: str, profile: Tenant, request: Request) -> BatchDeleted:
        await _runner(request).delete(batch_id, profile.tenant_id)
        return BatchDeleted(id=batch_id)


def runner(ctx: RouterContext) -> BatchRunner:
    """The batch worker the settings describe: folder, concurrency, limits and caps, the router's task path."""
    s = ctx.settings
    quota = Quota(
        max_active=s.batch_max_active,
        max_stored=s.batch_max_stored,
        max_stored_bytes=s.batch_max_stored_bytes,
        retention_s=s.batch_retention_s,
    )
    return BatchRunner(
        BatchStore(s.batches_dir),
        executor(ctx),
        concurrency=s.batch_concurrency,
        max_lines=s.batch_max_lines,
        max_line_bytes=s.batch_max_line_bytes,
        quota=quota,
        observe=ctx.metrics.count_batch_line,
    )


def executor(ctx: RouterContext) -> Execute:
    """One batch line through the request path at the `batch` priority class: the tenant's current profile, the
    task's checks, the tenant's limits and the deployment's queue (a refusal is retried by the runner), the task's
    default deadline, no restore (results are stored); returns the response body."""

    async def execute(tenant_id: str, task_name: str, body: dict) -> dict:
        profile = ctx.registry.get(tenant_id)
        task = Task(task_name)
        _check_batch_allowed(profile)  # the profile may have changed since the upload
        call = Call(task, profile, _validated(task, body), BATCH, ctx.settings.deadlines.for_task(task.value))
        with tracing.step("batch line", tenant=tenant_id, task=task.value, priority=BATCH):
            response = await ctx.pipeline.handle(call)
        assert isinstance(response, BaseModel)
        return response.model_dump(mode="json")

    return execute


def _validated(task: Task, body: dict) -> BaseModel:
    try:
        return REQUEST_BODIES[task].model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc, "body"), field=first_field(exc, "body")) from None


def _check_batch_allowed(profile: CompiledProfile) -> None:
    if PriorityClass.BATCH not in profile.spec.priority.allowed_classes:
        raise Forbidden(f"tenant {profile.tenant_id!r} may not run batches: priority.allowedClasses lacks `batch`")


def _check_upload(profile: CompiledProfile, request: Request) -> None:
    _check_batch_allowed(profile)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in UPLOAD_TYPES:
        raise HTTPException(
            415, f"send the JSONL file as the raw request body (content-type {JSONL}), not {media[:60]}"
        )


def _runner(request: Request) -> BatchRunner:
    return request.app.state.batches


@contextlib.contextmanager
def _admitted(ctx: RouterContext, profile: CompiledProfile):
    """An upload counts against the tenant's requestsPerSecond and concurrentRequests like any request (429)."""
    limits = profile.spec.limits
    ctx.limiter.admit(profile.tenant_id, limits)
    try:
        yield
    finally:
        ctx.limiter.release(profile.tenant_id, limits, 0)


def _declared_bytes(request: Request) -> int:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() and len(declared) < 16 else 0


def _info(view: BatchView, request: Request) -> BatchInfo:
    meta, progress = view.meta, view.progress
    counts = BatchCounts(
        total=progress.total, completed=progress.completed, failed=progress.failed, pending=progress.pending
    )
    finished = int(meta.finished_at) if meta.finished_at is not None else None
    ends = expires_at(meta, _runner(request).quota.retention_s)
    return BatchInfo(
        id=meta.id,
        status=meta.status.value,
        task=meta.task,
        created_at=int(meta.created_at),
        finished_at=finished,
        expires_at=int(ends) if ends is not None else None,
        counts=counts,
    )


def _with_status(record: dict) -> dict:
    """An error record gains the HTTP status its error maps to, as the same request would have got on its own."""
    if "error" not in record:
        return record
    return {**record, "error": {"status": _STATUS_OF_CODE.get(record["error"]["type"], 500), **record["error"]}}
