"""Moved to serving.vocabulary.catalog (issue 16); this alias stays only while the modules another change has in flight
(app.py, deployments/backend.py, pipeline/steps.py, replica/local_backend.py, training/cli.py) still name it here."""

from serving.vocabulary.catalog import DESCRIPTIONS, GENERATIVE, Task

__all__ = ["DESCRIPTIONS", "GENERATIVE", "Task"]
