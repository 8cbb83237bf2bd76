"""Moved to serving.vocabulary.conversation (issue 16); kept as an alias for the same reason as serving.tasks.catalog."""

from serving.vocabulary.conversation import *  # noqa: F403
