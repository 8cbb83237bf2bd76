"""How many batches and bytes a tenant may keep: a pure check over what the store holds, RateLimited (429) when over.

Three caps, all per tenant: batches not finished yet (`max_active`), batches kept at all (`max_stored`, finished ones
included until deleted or expired) and bytes kept (`max_stored_bytes`: uploads and results). A refusal says which cap
and when to retry: for the kept caps, when the oldest finished batch expires (or to delete finished batches); for the
active cap, a fixed `ACTIVE_RETRY_S` (how long a batch takes is not known in advance).

Several router replicas accept uploads into one folder: two uploads racing in different processes may both pass a cap
by one; within one process `BatchRunner.submit` checks and creates under a lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.batches.store import BatchMeta
from serving.errors import PayloadTooLarge, RateLimited

ACTIVE_RETRY_S = 30.0
DELETE_HINT = "DELETE /v1/batches/{id} removes a finished batch"


@dataclass(frozen=True)
class Quota:
    max_active: int = 4
    max_stored: int = 100
    max_stored_bytes: int = 512 * 1024 * 1024
    retention_s: float = 7 * 86_400


def check_room(
    tenant_id: str, kept: list[tuple[BatchMeta, int]], incoming_bytes: int, quota: Quota, now: float
) -> None:
    """Raise when one more batch of `incoming_bytes` would put the tenant over a cap; `kept` is the tenant's batches
    with their sizes on disk."""
    if incoming_bytes > quota.max_stored_bytes:
        raise PayloadTooLarge(
            f"the upload is {incoming_bytes} bytes, over the {quota.max_stored_bytes} bytes a tenant "
            f"may keep in batches",
            field="body",
        )
    active = sum(1 for meta, _ in kept if not meta.status.finished)
    if active >= quota.max_active:
        raise RateLimited(
            f"tenant {tenant_id!r} has {active} batches queued or running, its limit; wait for one to "
            f"finish or cancel one",
            retry_after=ACTIVE_RETRY_S,
        )
    if len(kept) >= quota.max_stored:
        raise RateLimited(
            f"tenant {tenant_id!r} keeps {len(kept)} batches, its limit; {DELETE_HINT}",
            retry_after=_until_one_expires(kept, quota, now),
        )
    used = sum(size for _, size in kept)
    if used + incoming_bytes > quota.max_stored_bytes:
        raise RateLimited(
            f"tenant {tenant_id!r} keeps {used} bytes of batches; {incoming_bytes} more would be over its "
            f"limit of {quota.max_stored_bytes}; {DELETE_HINT}",
            retry_after=_until_one_expires(kept, quota, now),
        )


def expired(meta: BatchMeta, retention_s: float, now: float) -> bool:
    return meta.finished_at is not None and meta.finished_at + retention_s <= now


def expires_at(meta: BatchMeta, retention_s: float) -> float | None:
    return meta.finished_at + retention_s if meta.finished_at is not None else None


def _until_one_expires(kept: list[tuple[BatchMeta, int]], quota: Quota, now: float) -> float:
    ends = [meta.finished_at + quota.retention_s for meta, _ in kept if meta.finished_at is not None]
    return max(1.0, min(ends) - now) if ends else ACTIVE_RETRY_S
