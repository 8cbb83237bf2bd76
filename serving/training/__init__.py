"""LoRA training and held-out evaluation of the generative task models (`switchboard train|eval TASK`)."""

from __future__ import annotations

from serving.training.data import Example, render_examples
from serving.training.trainer import TrainConfig, train

__all__ = ["Example", "TrainConfig", "render_examples", "train"]
