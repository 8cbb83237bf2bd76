"""The Switchboard operator (kopf): TaskModels -> one KubeRay RayService per namespace; TenantProfile validation.

Importing this package needs only pydantic and PyYAML; `handlers`, `cluster` and `__main__` need the `k8s` extra.
"""

from operators.switchboard_operator.builders import AcceptedModel, RouterOptions, build_rayservice
from operators.switchboard_operator.crds import all_crds
from operators.switchboard_operator.models import API_VERSION, Engine, TaskModelSpec

__all__ = ["API_VERSION", "AcceptedModel", "Engine", "RouterOptions", "TaskModelSpec", "all_crds", "build_rayservice"]
