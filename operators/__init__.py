"""Kubernetes operators of Switchboard (the control plane); the data plane lives in `serving`."""
