"""Ray Serve deployments: the router ingress, the task deployments and the Ray-backed TaskBackend."""
