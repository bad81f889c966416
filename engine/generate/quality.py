"""How good are generated images? Ask the built-in Fashion-MNIST classifier.

The measure of the issue: generate 10 images for each class prompt ("a photo of a
sneaker.") and count how many the independent fmnist-vit-tiny classifier (trained by the
supervised recipe, 88.5% on the test set) recognises as the prompted class.
"""
from __future__ import annotations

import numpy as np

JUDGE = "fmnist-vit-tiny"


class Judge:
    def __init__(self, model, mean: float, std: float, device: str):
        self.model, self.mean, self.std, self.device = model, mean, std, device

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 -> (N, 10) class probabilities."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).float().div(255.0)[:, None]
            return self.model((x - self.mean) / self.std).float().softmax(-1).cpu().numpy()

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.probabilities(images).argmax(1)


def load_judge(device: str = "cpu") -> Judge:
    from engine.catalogue import get
    from engine.catalogue.load import build_model

    entry = get(JUDGE)
    return Judge(build_model(entry).to(device), float(entry.preprocess.mean[0]), float(entry.preprocess.std[0]),
                 device)


def class_recognition(judge: Judge, images: np.ndarray, prompted: np.ndarray, classes) -> dict:
    """{"accuracy", "per_class": {name: share}, "confusion": C x C list} for generated images."""
    pred = judge.predict(images)
    n = len(classes)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (prompted, pred), 1)
    per_class = {classes[c]: round(float(confusion[c, c] / max(1, confusion[c].sum())), 4) for c in range(n)}
    return {"accuracy": round(float(confusion.trace() / max(1, len(prompted))), 4), "per_class": per_class,
            "confusion": confusion.tolist()}


def class_prompt(c: int) -> str:
    """The prompt the measure uses for class c: "a photo of a t-shirt.", ... (the first
    zero-shot prompt of engine/data/captions.py)."""
    from engine.data import captions

    return captions.prompts(c)[0]


def evaluate_tiny_unclip(pipe, prior: str, per_class: int = 10, steps: int = 50, guidance: float = 3.0,
                         prior_steps: int = 32, prior_guidance: float = 1.0, judge: Judge | None = None,
                         seed: int = 0, batch: int = 50):
    """Generator (yields None between batches): generate `per_class` images for each class
    prompt with `prior` and return class_recognition(...) plus the images.

    Image j of class c uses seed seed + 1000·c + j, so every image can be regenerated alone
    (`python main.py generate PROMPT --seed S --n 1`).
    """
    from engine.data import fashion_mnist
    from engine.generate.unclip import to_uint8

    classes = fashion_mnist.class_names()
    judge = judge or load_judge(pipe.device)
    prompts, seeds, prompted = [], [], []
    for c in range(len(classes)):
        for j in range(per_class):
            prompts.append(class_prompt(c))
            seeds.append(seed + 1000 * c + j)
            prompted.append(c)
    images = []
    for start in range(0, len(prompts), batch):
        p, s = prompts[start:start + batch], seeds[start:start + batch]
        prior_noise, x_T = pipe.noise(s)
        text = pipe.text_embedding(p)
        emb = pipe.prior_embedding(text, prior, prior_noise, prior_steps, prior_guidance)
        x = x_T
        for step in pipe.decode_iter(emb, x_T, steps, guidance):
            x = step.x
            yield None
        images.append(to_uint8(x))
    images = np.concatenate(images)
    out = class_recognition(judge, images, np.asarray(prompted), classes)
    out.update(prior=prior, images=len(images), steps=steps, guidance=guidance, prior_steps=prior_steps,
               prior_guidance=prior_guidance, seeds=f"{seed} + 1000·class + j, j < {per_class}")
    return out, images
