"""Runs the operator: `python -m operators.switchboard_operator` (in-cluster config, or the local kubeconfig)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from typing import Any

import kopf

from operators.switchboard_operator.builders import RouterOptions
from operators.switchboard_operator.cluster import Cluster
from operators.switchboard_operator.handlers import register

ENV_PREFIX = "SWITCHBOARD_OPERATOR_"


def options_from_env(environ: dict[str, str]) -> RouterOptions:
    """RouterOptions from SWITCHBOARD_OPERATOR_<FIELD> variables; RAY_ENV_<NAME> entries go to the Ray containers."""
    fields = {
        k.lower(): v
        for k, v in ((k.removeprefix(ENV_PREFIX), v) for k, v in environ.items() if k.startswith(ENV_PREFIX))
    }
    env = tuple(sorted((k.removeprefix("ray_env_").upper(), v) for k, v in fields.items() if k.startswith("ray_env_")))
    known: dict[str, Any] = {k: v for k, v in fields.items() if k in RouterOptions.model_fields}
    if "serve_service_annotations" in known:  # a JSON object (the chart writes toJson of the values)
        known["serve_service_annotations"] = json.loads(known["serve_service_annotations"] or "{}")
    for name in ("image_pull_secrets", "key_secrets"):  # comma-separated Secret names
        if name in known:
            known[name] = tuple(n for n in known[name].split(",") if n)
    return RouterOptions(**known, env=env)


def peering_priority(pod_name: str) -> int:
    """kopf peering pauses every operator that sees a peer of higher OR EQUAL priority, so replicas of one Deployment
    need distinct priorities: one from the pod's name (unique in its namespace). The highest runs, the others wait and
    take over when its peering entry expires (settings.peering.lifetime, 60 s)."""
    return 1 + int.from_bytes(hashlib.sha256(pod_name.encode()).digest()[:4], "big") % (2**31 - 2)


def api_client():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", help="Namespace to serve (repeatable); default: all.")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="kopf liveness endpoint.")
    parser.add_argument(
        "--peering",
        help="kopf peering object (KopfPeering per namespace, ClusterKopfPeering when "
        "cluster-wide): replicas elect one active operator; unset runs standalone (one replica only).",
    )
    args = parser.parse_args(argv)
    registry = kopf.OperatorRegistry()
    register(registry, Cluster(api_client()), options_from_env(dict(os.environ)))
    peering = (
        {"standalone": True}
        if not args.peering
        else {
            "peering_name": args.peering,
            "priority": peering_priority(os.environ.get("POD_NAME") or os.uname().nodename),
        }
    )
    kopf.run(
        registry=registry,
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness,
        **peering,
    )


if __name__ == "__main__":
    main()
