"""TaskBackend over Ray Serve DeploymentHandles; Ray's exceptions become Switchboard errors here, where they enter."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterable

from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from serving.errors import ModelNotReady, NotFound, Overloaded, SwitchboardError, TaskFailed
from serving.tasks.jobs import GenerateJob, IntentJob, QualityJob, RedactJob, Traced
from serving.telemetry import tracing
from serving.vocabulary.catalog import Task

log = logging.getLogger(__name__)

METHODS = {Task.REDACT.value: "redact", Task.CLASSIFY_INTENT.value: "classify"}
ROUTER = "router"  # the ingress deployment's name (serving.app)


class RayBackend:
    def __init__(
        self, handles: dict[str, serve.handle.DeploymentHandle], ping_timeout_s: float = 2.0, heads: Iterable[str] = ()
    ):
        # Ray Serve's gRPC transport between deployments: about 1.3 ms less CPU per call than an actor call on
        # this machine (benchmarks/router_overhead.py), and a caller that goes away cancels the replica's work.
        self._handles = {task: _direct(h) for task, h in handles.items()}
        self._ping_timeout_s = ping_timeout_s
        # Tasks whose handle is a deployment hosting a trained head (score-quality in the classify replica).
        self._heads = frozenset(heads) & frozenset(self._handles)

    def served(self) -> frozenset[str]:
        return frozenset(self._handles)

    def head_tasks(self) -> frozenset[str]:
        return self._heads

    async def score_quality(self, job: QualityJob) -> dict:
        if Task.SCORE_QUALITY.value not in self._heads:
            raise NotFound("score-quality has no trained head on this platform")
        return await self._call(Task.SCORE_QUALITY.value, job, "score_quality")

    async def redact(self, job: RedactJob) -> dict:
        return await self._call(Task.REDACT.value, job)

    async def classify_intent(self, job: IntentJob) -> dict:
        return await self._call(Task.CLASSIFY_INTENT.value, job)

    async def generate(self, task: str, job: GenerateJob) -> dict:
        return await self._call(task, job, "generate")

    async def stream(self, task: str, job: GenerateJob):
        handle = self._handle(task).options(stream=True)
        with (
            tracing.step(f"dispatch {task}", tracing.SpanKind.CLIENT, task=task, deployment="generate"),
            _translated(task),
        ):
            async for chunk in handle.stream.remote(_stamped(job)):
                yield chunk

    async def ready(self) -> dict[str, bool]:
        """Per task: its deployment answers a ping, or it is healthy with no replica because it scaled to zero (a
        ping would wake it; the first request will). The generative tasks share one deployment locally."""
        deployments = {_deployment(h): h for h in self._handles.values()}
        states = await self._states()
        names = list(deployments)
        results = dict(
            zip(names, await asyncio.gather(*(self._ready(deployments[n], states.get(n)) for n in names)), strict=True)
        )
        return {task: results[_deployment(h)] for task, h in sorted(self._handles.items())}

    async def replicas(self) -> dict[str, int]:
        """Running replicas per deployment of this application (the task deployments and the `router`), from the
        Serve controller."""
        return {name: d.running for name, d in (await self._states()).items()}

    async def _states(self) -> dict[str, DeploymentState]:
        names = {_deployment(h) for h in self._handles.values()} | {ROUTER}
        return deployment_states(await asyncio.to_thread(_serve_details), names)

    async def _ready(self, handle, state: DeploymentState | None) -> bool:
        if state is not None and state.running == 0:
            return state.status in ("HEALTHY", "DOWNSCALING")
        return await self._ping(handle)

    async def _ping(self, handle) -> bool:
        try:
            return bool(await asyncio.wait_for(handle.ping.remote(), self._ping_timeout_s))
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    def _handle(self, task: str):
        handle = self._handles.get(task)
        if handle is None:
            raise NotFound(f"task {task!r} is not deployed on this platform")
        return handle

    async def _call(self, task: str, job, method: str | None = None) -> dict:
        handle = getattr(self._handle(task), method or METHODS[task])
        with tracing.step(f"dispatch {task}", tracing.SpanKind.CLIENT, task=task), _translated(task):
            try:
                return await handle.remote(_stamped(job))
            except RayActorError:
                # Task requests have no side effects, so one retry (on another or the restarted replica) is safe;
                # a second death reaches the client as a 502 that says so.
                log.warning("replica died during a request; retrying once", extra={"task": task})
                tracing.annotate(attempt=2)
                return await handle.remote(_stamped(job))


@dataclasses.dataclass(frozen=True)
class DeploymentState:
    status: str  # HEALTHY, UPDATING, DOWNSCALING, ... (Serve's DeploymentStatus)
    running: int  # replicas in the RUNNING state


def _serve_details() -> dict:
    """The Serve controller's instance details as the plain dict it sends. `serve.status()` builds the same data into
    pydantic models whose validators cloudpickle each deployment's request router class: about 26 ms of CPU (GIL
    held) per call here, once a second in every router replica, against 0.7 ms for the dict."""
    try:
        from ray.serve.context import _get_global_client

        client = _get_global_client()  # raises where no Serve controller runs
        return client.get_serve_details() if client is not None else {}
    except (ImportError, AttributeError):  # a Ray without the client API: the public, slower path
        status = serve.status()
        return {
            "applications": {
                name: {
                    "deployments": {
                        d: {
                            "status": s.status,
                            "replicas": [{"state": r} for r, n in s.replica_states.items() for _ in range(n)],
                        }
                        for d, s in app.deployments.items()
                    }
                }
                for name, app in status.applications.items()
            }
        }


def deployment_states(details: dict, names: set[str]) -> dict[str, DeploymentState]:
    """Status and running replicas of the deployments named in `names`, from the controller's details (pure)."""
    out = {}
    for app in (details.get("applications") or {}).values():
        for name, d in (app.get("deployments") or {}).items():
            if name in names:
                running = sum(1 for r in d.get("replicas") or [] if _value(r.get("state")) == "RUNNING")
                out[name] = DeploymentState(str(_value(d.get("status"))), running)
    return out


def _value(enum_or_str):
    return getattr(enum_or_str, "value", enum_or_str)


def _direct(handle):
    """The handle over Ray Serve's inter-deployment gRPC transport (`_by_reference=False`); test doubles as they are."""
    return handle.options(_by_reference=False) if isinstance(handle, serve.handle.DeploymentHandle) else handle


def _deployment(handle) -> str:
    return getattr(handle, "deployment_name", None) or str(id(handle))


def _stamped(job):
    """The job with the current trace context and the dispatch time, for the replica's spans."""
    return dataclasses.replace(job, traced=Traced(tracing.inject(), time.time()))


@contextlib.contextmanager
def _translated(task: str):
    """Ray's exceptions, as they enter, become Switchboard errors."""
    try:
        yield
    except BackPressureError:
        raise Overloaded(f"task {task!r} is at capacity; retry shortly", retry_after=1) from None
    except DeploymentUnavailableError:
        raise ModelNotReady(f"task {task!r} has no running replica yet", retry_after=2) from None
    except RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), SwitchboardError) else None
        if cause is not None:
            raise cause from None
        log.error("task failed", extra={"task": task, "error_type": type(getattr(exc, "cause", exc)).__name__})
        raise TaskFailed(f"task {task!r} failed on its replica") from None
    except RayActorError:
        raise TaskFailed(f"the {task!r} replica died while serving the request; retry", retry_after=1) from None
    except SwitchboardError:
        raise  # over gRPC a replica's own error arrives as itself (not wrapped in a RayTaskError)
    except Exception as exc:  # noqa: BLE001 - over gRPC any other replica error arrives unwrapped too
        log.error("task failed", extra={"task": task, "error_type": type(exc).__name__})
        raise TaskFailed(f"task {task!r} failed on its replica") from None
