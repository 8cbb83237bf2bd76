"""The one table from domain errors (serving.errors) to kserve's errors, which kserve maps to HTTP and gRPC status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kserve.errors import InferenceError, InvalidInput, ModelNotReady

from serving import errors as e

# kserve answers InvalidInput with 400, ModelNotReady with 503 and InferenceError with 500; it has no 403/404/502 for
# a model's own errors, so a disabled task or an unknown tenant is a bad request naming `parameters.tenant`.
_BAD_REQUEST = (e.InvalidRequest, e.Forbidden, e.NotFound, e.PayloadTooLarge, e.Unauthenticated)
_UNAVAILABLE = (e.ModelNotReady, e.Overloaded, e.RateLimited)


def to_kserve(error: e.SwitchboardError, model_name: str) -> Exception:
    if isinstance(error, _BAD_REQUEST):
        return InvalidInput(error.message)
    if isinstance(error, _UNAVAILABLE):
        return ModelNotReady(model_name, error.message)
    return InferenceError(f"{error.code}: {error.message}")


@contextmanager
def translated(model_name: str) -> Iterator[None]:
    """Re-raise domain errors as kserve's, where they leave the model."""
    try:
        yield
    except e.SwitchboardError as exc:
        raise to_kserve(exc, model_name) from None
