"""RayBackend where Ray enters: replica counts read from the Serve controller's details, and errors translated.

Faked: the Serve controller (its details are a dict shaped like the one `get_serve_instance_details` sends) and the
replica (an exception raised in `_translated`), because a real one needs a Ray cluster (tests/e2e has one). Real: the
Ray and Switchboard exception types, and the translation code.
"""

from __future__ import annotations

import pytest
from ray.exceptions import RayTaskError
from ray.serve._private.common import DeploymentStatus, ReplicaState

from serving.deployments.backend import DeploymentState, _translated, deployment_states
from serving.errors import InvalidRequest, TaskFailed

DETAILS = {"applications": {"switchboard": {"deployments": {
    "router": {"status": DeploymentStatus.HEALTHY, "replicas": [{"state": ReplicaState.RUNNING}]},
    "generate": {"status": "UPSCALING", "replicas": [{"state": "RUNNING"}, {"state": "STARTING"}, {"state": "RUNNING"}]},
    "redact": {"status": DeploymentStatus.HEALTHY, "replicas": []},
}}, "other-app": {"deployments": {"bare": {"status": "HEALTHY", "replicas": [{"state": "RUNNING"}]}}}}}


def test_running_replicas_and_status_per_named_deployment():
    states = deployment_states(DETAILS, {"router", "generate", "redact", "classify-intent"})
    assert states == {"router": DeploymentState("HEALTHY", 1), "generate": DeploymentState("UPSCALING", 2),
                      "redact": DeploymentState("HEALTHY", 0)}


def test_no_applications_means_no_states():
    assert deployment_states({}, {"router"}) == {}
    assert deployment_states({"applications": {"a": {"deployments": None}}}, {"router"}) == {}


def test_a_replicas_own_error_arrives_as_itself_over_grpc():
    with pytest.raises(InvalidRequest, match="bad field"), _translated("summarize"):
        raise InvalidRequest("bad field")


def test_any_other_replica_error_is_a_task_failure_without_its_message():
    with pytest.raises(TaskFailed) as caught, _translated("summarize"):
        raise KeyError("customer text that must not reach the client")
    assert "summarize" in caught.value.message and "customer" not in caught.value.message


def test_a_switchboard_error_wrapped_by_an_actor_call_is_unwrapped():
    wrapped = RayTaskError("generate", "traceback", InvalidRequest("too long")).as_instanceof_cause()
    with pytest.raises(InvalidRequest, match="too long"), _translated("summarize"):
        raise wrapped
