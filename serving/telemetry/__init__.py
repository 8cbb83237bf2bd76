"""Logging, tracing and metrics of the data plane."""
