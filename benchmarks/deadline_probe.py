"""Does a 504 stop the generation? Requests with a short deadline and a long max_tokens, and the engine's own count
of the tokens it made after each cancel (read from the generate replica over Ray Serve).

Used by load.py (non-fake engines: the fake engine does not decode step by step). The target of issue 15: at most
one decoding step per cancelled request, i.e. tokens made after cancel <= sequences cancelled. The counters are one
replica's; the probe runs when the deployment is back at one replica, and says so when it is not.
"""

from __future__ import annotations

import asyncio

import httpx

APP = "switchboard"  # the Serve application `switchboard run` deploys (replicas are ServeReplica:switchboard:<name>)


# The shared generative deployment and the ones a task with an accepted adapter gets (serving/app.py).
DEPLOYMENTS = ("generate", "generate-summarize", "generate-reply", "generate-score-quality")


def engine_stats(deployments: tuple[str, ...] = DEPLOYMENTS) -> dict | None:
    """The engine counters summed over the generative deployments that exist (one replica each); None (with the
    reason printed) when none answers."""
    try:
        import ray
        from ray import serve

        if not ray.is_initialized():
            ray.init(address="auto", log_to_driver=False, logging_level="ERROR")
        running = set(serve.status().applications[APP].deployments)
    except Exception as exc:  # noqa: BLE001 - a probe, not the platform: report and go on
        print(f"engine stats unavailable: {type(exc).__name__}: {str(exc)[:200]}")
        return None
    total: dict | None = None
    for name in (d for d in deployments if d in running):
        try:
            stats = serve.get_deployment_handle(name, app_name=APP).engine_stats.remote().result(timeout_s=30)
        except Exception as exc:  # noqa: BLE001
            print(f"engine stats of {name} unavailable: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        total = stats if total is None else {k: total[k] + stats[k] if k != "max_batch_size" else max(total[k], stats[k])
                                             for k in stats}
    return total


async def deadline_probe(client: httpx.AsyncClient, key: str, requests: int = 4, deadline_ms: int = 2000,
                         max_tokens: int = 400, settle_s: float = 3.0) -> dict:
    """`requests` summaries at once, each with a `deadline_ms` deadline and room for `max_tokens` tokens (far more
    than fit in the deadline on a CPU); after they are answered and `settle_s` more, what the engine counted."""
    before = await asyncio.to_thread(engine_stats)
    headers = {"Authorization": f"Bearer {key}", "X-Switchboard-Deadline-Ms": str(deadline_ms)}

    async def one(i: int) -> int | str:
        body = {"transcript": f"Customer: order {i} is late, tell me everything about delivery times.\nAgent: Sure.",
                "max_tokens": max_tokens}
        try:
            return (await client.post("/v1/tasks/summarize", json=body, headers=headers)).status_code
        except httpx.HTTPError as exc:
            return f"client:{type(exc).__name__}"

    statuses = await asyncio.gather(*(one(i) for i in range(requests)))
    await asyncio.sleep(settle_s)
    after = await asyncio.to_thread(engine_stats)
    result = {"requests": requests, "deadline_ms": deadline_ms, "max_tokens": max_tokens,
              "status_504": sum(1 for s in statuses if s == 504), "statuses": [str(s) for s in statuses]}
    if before is None or after is None:
        return {**result, "engine_stats": None}
    cancelled = after["cancelled"] - before["cancelled"]
    tokens_after = after["tokens_after_cancel"] - before["tokens_after_cancel"]
    return {**result, "engine_before": before, "engine_after": after, "cancelled": cancelled,
            "tokens_after_cancel": tokens_after, "within_one_step_each": tokens_after <= cancelled if cancelled else None}


def describe(probe: dict) -> str:
    head = (f"deadline probe: {probe['requests']} summaries, deadline {probe['deadline_ms']} ms, max_tokens "
            f"{probe['max_tokens']}: {probe['status_504']} got 504")
    if probe.get("engine_stats", True) is None:
        return head + "; engine counters unavailable (see above)"
    if not probe["cancelled"]:
        return head + "; the engine counted no cancelled sequence, so nothing was measured (NOT OK: a 504 should cancel)"
    return (head + f"; the engine cancelled {probe['cancelled']} sequences and made {probe['tokens_after_cancel']} "
            f"tokens after their cancel (target <= {probe['cancelled']}, one step each: "
            f"{'OK' if probe['within_one_step_each'] else 'NOT OK'})")
