"""The Attention panel's sample-images job: real Fashion-MNIST test images (engine.data.samples),
the same files the MAE panel offers."""
from __future__ import annotations

from engine.data.samples import fashion_mnist_samples


def samples_job(ctx, count: int = 10):
    return fashion_mnist_samples(count)
