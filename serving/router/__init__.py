"""The multi-tenant HTTP router (FastAPI), independent of Ray: it reaches the tasks through a TaskBackend."""

from serving.router.app import create_app
from serving.router.context import RouterContext

__all__ = ["RouterContext", "create_app"]
