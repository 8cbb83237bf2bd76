"""The one exception tree of the data plane; the router maps it to HTTP once, at the edge."""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of every domain error. `code` is a stable machine-readable identifier."""

    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after


class ConfigError(SwitchboardError):
    """Settings or a model/profile file that cannot be used."""

    code = "invalid_config"


class ProfileError(SwitchboardError):
    """A tenant profile failed validation or compilation; `field` names where."""

    code = "invalid_profile"


class InvalidRequest(SwitchboardError):
    """The request body or parameters are wrong."""

    code = "invalid_request"


class Unauthenticated(SwitchboardError):
    """No API key, or one that matches no tenant."""

    code = "unauthenticated"


class Forbidden(SwitchboardError):
    """The key is valid but may not reach this resource (another tenant's, a disabled task)."""

    code = "forbidden"


class NotFound(SwitchboardError):
    """Unknown task, tenant or route."""

    code = "not_found"


class PayloadTooLarge(SwitchboardError):
    """The request body is over the configured limit."""

    code = "payload_too_large"


class RateLimited(SwitchboardError):
    """A tenant limit was hit; retry after `retry_after` seconds."""

    code = "rate_limited"


class Overloaded(SwitchboardError):
    """The platform has no capacity right now; retry after `retry_after` seconds."""

    code = "overloaded"


class DeadlineExceeded(SwitchboardError):
    """The request did not finish before its deadline."""

    code = "deadline_exceeded"


class TaskFailed(SwitchboardError):
    """A task deployment failed to produce a valid result."""

    code = "task_failed"


class ModelNotReady(SwitchboardError):
    """A model or task deployment is not loaded (yet)."""

    code = "model_not_ready"


__all__ = [
    "ConfigError",
    "DeadlineExceeded",
    "Forbidden",
    "InvalidRequest",
    "ModelNotReady",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "ProfileError",
    "RateLimited",
    "SwitchboardError",
    "TaskFailed",
    "Unauthenticated",
]
