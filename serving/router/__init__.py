"""The multi-tenant HTTP router (FastAPI), independent of Ray: it reaches the tasks through a TaskBackend."""

from serving.router.app import create_app
from serving.router.context import RouterContext
from serving.router.scheduler import build_gates

__all__ = ["RouterContext", "build_gates", "create_app"]
