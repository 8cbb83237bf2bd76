"""Switchboard: Kubernetes-native serving for small customer-service language models."""

__version__ = "0.1.0"
__all__ = ["__version__"]
