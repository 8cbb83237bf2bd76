"""Status functions: observed state -> conditions and status patches. Pure; nothing faked."""

from __future__ import annotations

from operators.switchboard_operator import status as st

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def test_condition_keeps_its_transition_time_while_the_status_holds():
    first = st.taskmodel_accepted(None, 1, "switchboard", T0)
    again = st.taskmodel_accepted(first, 2, "switchboard", T1)
    flipped = st.taskmodel_rejected(again, 3, "InvalidSpec", "spec: bad", T1)
    assert again["conditions"][0]["lastTransitionTime"] == T0 and again["conditions"][0]["observedGeneration"] == 2
    assert flipped["conditions"][0] == {"type": "Accepted", "status": "False", "reason": "InvalidSpec",
                                        "message": "spec: bad", "lastTransitionTime": T1, "observedGeneration": 3}


def test_ready_follows_serve_deployment_status():
    serve = {"activeServiceStatus": {"applicationStatuses": {"switchboard": {"serveDeploymentStatuses": {
        "redact": {"status": "HEALTHY"}, "reply": {"status": "UNHEALTHY", "message": "replica crashed"}}}}}}
    healthy = st.taskmodel_ready({}, serve, "redact", 2, T0)
    broken = st.taskmodel_ready({}, serve, "reply", 1, T0)
    pending = st.taskmodel_ready({}, None, "summarize", 1, T0)
    assert st.get_condition(healthy, "Ready")["status"] == "True" and healthy["readyReplicas"] == 2
    assert st.get_condition(broken, "Ready")["message"] == "replica crashed" and broken["readyReplicas"] == 0
    assert st.get_condition(pending, "Ready")["status"] == "Unknown" and pending["deploymentStatus"] == "Unknown"


def test_profile_status_reports_tokens_and_keeps_them_when_rejected():
    accepted = st.profile_accepted(None, 1, {"reply": 30, "summarize": 12}, "abc123", T0)
    rejected = st.profile_rejected(accepted, 2, "InvalidSpec", "spec.rubric: required", T1)
    assert accepted["instructionTokensTotal"] == 42 and accepted["message"] == "accepted"
    assert "instructionTokens" not in rejected  # a merge patch without them keeps the last accepted sizes
    assert rejected["message"] == "spec.rubric: required" and rejected["observedGeneration"] == 2
