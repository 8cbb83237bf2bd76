"""Moved to serving.vocabulary.schemas (issue 16); kept as an alias for the same reason as serving.tasks.catalog."""

from serving.vocabulary.schemas import *  # noqa: F403
