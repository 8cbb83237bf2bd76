"""The replica side of the tasks, without Ray: `TaskRunner` runs redact and classify jobs on their engines in batches,
`generation` runs a GenerateJob on a generation engine, and `LocalBackend` is a TaskBackend over both in this process.
The Ray Serve deployments (serving.deployments) and the KServe predictor (serving.kserve_server) wrap them."""

from serving.replica.local_backend import LocalBackend
from serving.replica.runner import TaskRunner

__all__ = ["LocalBackend", "TaskRunner"]
