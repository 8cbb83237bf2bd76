"""The multi-tenant HTTP router (FastAPI), independent of Ray: authenticates, parses each route's request into a
serving.pipeline Call and shapes the answer (task JSON, server-sent events, OpenAI); the tasks sit behind a TaskBackend."""

from serving.pipeline import build_gates
from serving.router.api import create_app
from serving.router.context import RouterContext

__all__ = ["RouterContext", "build_gates", "create_app"]
