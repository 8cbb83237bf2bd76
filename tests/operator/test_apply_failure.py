"""A RayService the API server refuses (400/403/422) leaves every TaskModel it carried Accepted=False/ApplyFailed.

Faked: the Cluster door, with a create that refuses as Cluster._call translates a 422 (kopf.PermanentError), since
the point is what the reconciler writes afterwards, not how the refusal arrives.
"""

from __future__ import annotations

import kopf
import pytest

from operators.switchboard_operator.builders import RouterOptions
from operators.switchboard_operator.handlers import Reconciler
from tests.k8s_helpers import load_samples


class RefusingCluster:
    def __init__(self, items):
        self.items, self.statuses = items, {}

    async def list_taskmodels(self, namespace):
        return self.items

    async def get_rayservice(self, namespace, name):
        return None

    async def create_rayservice(self, namespace, body):
        raise kopf.PermanentError("API server refused create_namespaced_custom_object: 422 Unprocessable Entity")

    async def patch_status(self, plural, namespace, name, status):
        self.statuses[name] = status


async def test_refused_apply_marks_taskmodels_not_accepted():
    items = [{**d, "metadata": {**d["metadata"], "uid": "u", "generation": 1}} for d in load_samples("taskmodels/cpu.yaml")]
    cluster = RefusingCluster(items)
    with pytest.raises(kopf.PermanentError):
        await Reconciler(cluster, RouterOptions()).reconcile("demo")
    assert set(cluster.statuses) == {d["metadata"]["name"] for d in items}
    for status in cluster.statuses.values():
        accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
        assert (accepted["status"], accepted["reason"]) == ("False", "ApplyFailed") and "422" in accepted["message"]
