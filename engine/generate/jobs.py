"""Engine jobs of the Generate panel and `python main.py generate`.

    engine.submit("generate", {"prompt": "a photo of a sneaker", "seed": 0, "n": 4})
    engine.submit("generate", {"image": "shoe.png", "n": 4})                  # variations
    engine.submit("generate_interpolate", {"a": {"prompt": "a dress"}, "b": {"prompt": "a coat"}})
    engine.submit("generate_gallery", {"action": "list"})
    engine.submit("generate_models", {})

The generate jobs yield Progress every sampler step and a GeneratePreview (the decoder's
current estimate of the clean images) every `preview_every` steps, so Stop lands within
one step (tens of milliseconds for the tiny model). The intermediate image embedding is
explained in every preview and in the result: its zero-shot similarity to each class
prompt, and the training images nearest to it.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.domain_check import DomainWarning, combine, image_warning, prompt_warning
from engine.errors import PatchworkError
from engine.generate.results import (EmbeddingInsight, GeneratedImage, GenerateError, GeneratePreview,
                                     GenerateResult, InterpolationResult, now)
from engine.jobs import Partial, Progress
from engine.stopping import Interrupted, next_or_stop

DEFAULT_GENERATOR = "fmnist-unclip-tiny"
NEIGHBOUR_POOL = 10_000  # the first N Fashion-MNIST training images are searched for neighbours
NEIGHBOURS = 8
MAX_IMAGES = 16


# ---------------------------------------------------------------------------- helpers
def _check(steps: int, guidance: float, n: int) -> None:
    if not 1 <= int(steps) <= 1000:
        raise GenerateError(f"steps must be between 1 and 1000 (got {steps})")
    if not 0.0 <= float(guidance) <= 50.0:
        raise GenerateError(f"guidance must be between 0 and 50 (got {guidance})")
    if not 1 <= int(n) <= MAX_IMAGES:
        raise GenerateError(f"the number of images must be between 1 and {MAX_IMAGES} (got {n})")


MIN_SIZE, MAX_SIZE = 32, 1024


def _check_size(size: int | None) -> None:
    """Kandinsky's MoVQ works in steps of 8 pixels (diffusers rounds up to 64); beyond 1024
    the pretrained decoder leaves its training range and memory grows quadratically."""
    if size is not None and not (MIN_SIZE <= int(size) <= MAX_SIZE and int(size) % 8 == 0):
        raise GenerateError(f"size must be a multiple of 8 between {MIN_SIZE} and {MAX_SIZE} pixels (got {size})")


def load_input_image(path: str) -> tuple[np.ndarray, bool]:
    """A picture as a Fashion-MNIST-like input: 28×28 grayscale, light object on black.
    Photos of things on a light background are inverted (returned flag True)."""
    from engine.data.folders import resize_crop
    from engine.images import open_image

    img = resize_crop(open_image(path, draft=(112, 112)).convert("L"), 28)
    a = np.asarray(img, dtype=np.uint8)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 127:
        return (255 - a).astype(np.uint8), True
    return a, False


class _Explainer:
    """Class-prompt similarities and nearest training images of embeddings, per CLIP model."""

    _cache: dict = {}

    def __init__(self, pipe, pool: int = NEIGHBOUR_POOL):
        self.pipe = pipe
        self.pool = int(pool)
        key = (pipe.spec.clip, pipe.device, self.pool)
        self.state = self._cache.setdefault(key, {})

    def prepare(self):
        """Generator: computes (once) the class prompts and the neighbour pool's embeddings."""
        import torch

        from engine.catalogue import get
        from engine.catalogue.locate import local_path
        from engine.data import fashion_mnist
        from engine.generate.embeddings import cached_image_embeddings, class_prompt_embeddings

        st = self.state
        if "classes" not in st:
            st["classes"] = fashion_mnist.class_names()
            st["class_emb"] = torch.from_numpy(class_prompt_embeddings(self.pipe.clip)).to(self.pipe.device)
            st["scale"] = float(self.pipe.clip.logit_scale.detach().exp().clamp(max=100.0))
        if "pool" not in st:
            try:
                train = fashion_mnist.load_fashion_mnist("train")
            except fashion_mnist.DatasetMissingError:
                st["pool"] = None
                return
            images, labels = train.images[:self.pool], train.labels[:self.pool]
            entry = get(self.pipe.spec.clip)
            yield Progress(None, f"embedding {len(images):,} training images for the neighbour view (once)")
            emb = yield from cached_image_embeddings(self.pipe.clip, entry, local_path(entry), images,
                                                     "fmnist-train", self.pipe.device)
            st["pool"] = (images, labels, torch.from_numpy(emb).to(self.pipe.device))

    def explain(self, emb, text_emb=None, k: int = NEIGHBOURS) -> tuple[EmbeddingInsight, ...]:
        """One EmbeddingInsight per row of emb (B, D); text_emb (B, D) adds the prompt similarity."""
        import torch

        st = self.state
        with torch.inference_mode():
            emb = emb.float()
            cos = emb @ st["class_emb"].t()  # B x C
            probs = (st["scale"] * cos).softmax(-1)
            out = []
            pool = st.get("pool")
            if pool is not None:
                images, labels, pool_emb = pool
                top = (emb @ pool_emb.t()).topk(k, dim=1)  # B x k
            for i in range(len(emb)):
                if pool is not None:
                    idx = top.indices[i].cpu().numpy()
                    neigh, nl, nc = images[idx], tuple(st["classes"][j] for j in labels[idx]), \
                        top.values[i].cpu().numpy()
                else:
                    neigh, nl, nc = np.zeros((0, 28, 28), np.uint8), (), np.zeros(0, np.float32)
                tc = None if text_emb is None else float((emb[i] * text_emb[i].float()).sum())
                out.append(EmbeddingInsight(classes=tuple(st["classes"]), class_probs=probs[i].cpu().numpy(),
                                            class_cos=cos[i].cpu().numpy(), neighbours=neigh, neighbour_labels=nl,
                                            neighbour_cos=nc, text_cos=tc))
        return tuple(out)


# ---------------------------------------------------------------------------- generate
def generate_job(ctx, prompt: str = "", negative_prompt: str = "", seed: int = 0, steps: int = 50,
                 guidance: float = 3.0, n: int = 4, model: str = DEFAULT_GENERATOR, prior: str = "diffusion",
                 prior_steps: int = 32, prior_guidance: float = 1.0, image: str | None = None,
                 preview_every: int = 5, save: bool = True, explain: bool = True, out_dir: str | None = None,
                 neighbour_pool: int = NEIGHBOUR_POOL, size: int | None = None):
    """Text -> images through the prior and the decoder; or, with `image`, variations of it
    (its CLIP image embedding decoded from new noise). Returns a GenerateResult. `size`
    (pixels, square) applies to Kandinsky only; it defaults to the pipeline's image_size."""
    from engine.generate.unclip import spec

    s = spec(model)
    prompt, negative_prompt = (prompt or "").strip(), (negative_prompt or "").strip()
    _check(steps, guidance, n)
    if not prompt and not image:
        raise GenerateError("write a prompt (or drop an image to make variations of it)")
    if s.kind == "kandinsky":
        from engine.generate.kandinsky import kandinsky_job

        _check_size(size)
        return (yield from kandinsky_job(ctx, s, prompt=prompt, negative_prompt=negative_prompt, seed=seed,
                                         steps=steps, guidance=guidance, n=n, prior_steps=prior_steps,
                                         prior_guidance=prior_guidance, image=image, preview_every=preview_every,
                                         save=save, out_dir=out_dir, height=int(size or s.image_size),
                                         width=int(size or s.image_size)))
    if size is not None and int(size) != s.image_size:
        raise GenerateError(f"{s.name} makes {s.image_size}×{s.image_size} images only; the size applies to "
                            "Kandinsky 2.2")
    return (yield from _tiny_generate(ctx, s, prompt, negative_prompt, int(seed), int(steps), float(guidance),
                                      int(n), prior, int(prior_steps), float(prior_guidance), image,
                                      int(preview_every), save, explain, out_dir, neighbour_pool))


def _tiny_generate(ctx, s, prompt, negative_prompt, seed, steps, guidance, n, prior, prior_steps, prior_guidance,
                   image, preview_every, save, explain, out_dir, neighbour_pool):
    from engine.generate.gallery import save_png
    from engine.generate.unclip import TinyUnclip, to_uint8

    t0 = time.perf_counter()
    yield Progress(None, "loading the model")
    pipe = TinyUnclip(ctx, s)
    explainer = _Explainer(pipe, neighbour_pool)
    if explain:
        yield from explainer.prepare()
    seeds = [seed + i for i in range(n)]
    prior_noise, x_T = pipe.noise(seeds)
    cancelled = (lambda: ctx.cancelled) if hasattr(ctx, "cancelled") else None
    notes = []
    text_emb = None
    if image:
        pixels, inverted = load_input_image(image)
        warning = _image_warning(s, image, pixels)
        if inverted:
            notes.append("the image has a light background: it was inverted to match Fashion-MNIST "
                         "(light clothes on black)")
        emb = pipe.image_embedding(pixels[None]).expand(n, -1)
        kind = "variation"
    else:
        if prior not in s.priors:
            raise GenerateError(f"{s.name} has no {prior!r} prior; choose one of {', '.join(s.priors)}")
        warning = prompt_warning(_catalogue_entry(s.decoder), prompt)
        yield Progress(None, f"prior: {prior}")
        text_emb = pipe.text_embedding([prompt]).expand(n, -1)
        emb = pipe.prior_embedding(text_emb, prior, prior_noise, prior_steps, prior_guidance)
        kind = "text"
    negative_emb = None
    if negative_prompt:
        # the negative prompt's own image embedding replaces "no embedding" in guidance
        neg_text = pipe.text_embedding([negative_prompt]).expand(n, -1)
        negative_emb = pipe.prior_embedding(neg_text, prior if prior in s.priors else next(iter(s.priors)),
                                            prior_noise, prior_steps, prior_guidance)
    insights = explainer.explain(emb, text_emb) if explain else ()
    yield Partial(GeneratePreview("prior", 0, steps, None, insights))

    x = x_T
    steps_iter = pipe.decode_iter(emb, x_T, steps, guidance, negative_emb)
    while True:  # each sampler step is abandoned at once on Stop (engine/stopping.py)
        try:
            step = next_or_stop(steps_iter, cancelled)
        except StopIteration:
            break
        except Interrupted:
            yield None  # the engine closes the job here
            raise
        x = step.x
        yield Progress(step.index / step.total, f"denoising {step.index}/{step.total}", step.index, step.total)
        if preview_every > 0 and (step.index % preview_every == 0) and step.index < step.total:
            yield Partial(GeneratePreview("decoder", step.index, step.total, to_uint8(step.x0), insights))
    pixels_out = to_uint8(x)
    seconds = time.perf_counter() - t0
    common = {"model": s.id, "prompt": prompt, "negative_prompt": negative_prompt, "steps": steps,
              "guidance": guidance, "prior": prior if kind == "text" else None, "prior_steps": prior_steps,
              "prior_guidance": prior_guidance, "kind": kind, "batch_seed": seed, "created": now()}
    if image:
        common["source_image"] = str(Path(image).resolve())
    images = []
    for i, px in enumerate(pixels_out):
        params = {**common, "seed": seeds[i], "index": i}
        path = str(save_png(px, params, out_dir)) if save else None
        images.append(GeneratedImage(px, seeds[i], params, path))
    yield Partial(GeneratePreview("decoder", steps, steps, pixels_out, insights))
    return GenerateResult(tuple(images), insights, s.id, {**common, "seed": seed, "n": n}, seconds, tuple(notes),
                          warning)


def _catalogue_entry(model_id: str):
    from engine import catalogue

    return catalogue.get(model_id)


def _image_warning(s, path: str, pixels: np.ndarray) -> DomainWarning | None:
    """The domain check of a variation's source: its colour, and the 28×28 view the embedding reads."""
    from engine.domain_check.inputs import chroma
    from engine.images import open_image

    colour = chroma(open_image(path, draft=(64, 64)))
    return image_warning(_catalogue_entry(s.decoder), view01=pixels / 255.0, colour=colour)


# ---------------------------------------------------------------------------- interpolate
def interpolate_job(ctx, a: dict, b: dict, frames: int = 8, seed: int = 0, steps: int = 50, guidance: float = 3.0,
                    model: str = DEFAULT_GENERATOR, prior: str = "diffusion", prior_steps: int = 32,
                    prior_guidance: float = 1.0, preview_every: int = 5, gif_path: str | None = None,
                    frame_ms: int = 120, neighbour_pool: int = NEIGHBOUR_POOL):
    """Slerp between the image embeddings of a and b ({"prompt": ...} or {"image": path}),
    decoding every frame from the same noise, so only the embedding changes along the strip.
    Writes an animated GIF (gif_path, or the gallery's interpolations/ folder)."""
    from engine.generate.gallery import gallery_dir, save_gif
    from engine.generate.unclip import TinyUnclip, interpolate_embeddings, spec, to_uint8

    s = spec(model)
    if s.kind != "tiny":
        raise GenerateError(f"interpolation runs on the tiny unCLIP models, not {s.name}")
    _check(steps, guidance, 1)
    if not 2 <= int(frames) <= 32:
        raise GenerateError(f"frames must be between 2 and 32 (got {frames})")
    t0 = time.perf_counter()
    yield Progress(None, "loading the model")
    pipe = TinyUnclip(ctx, s)
    explainer = _Explainer(pipe, neighbour_pool)
    yield from explainer.prepare()
    prior_noise, x_T = pipe.noise([int(seed)])

    warnings = []

    def embedding(end: dict, name: str):
        if end.get("image"):
            pixels, _ = load_input_image(str(end["image"]))
            warnings.append(_image_warning(s, str(end["image"]), pixels))
            return pipe.image_embedding(pixels[None])[0]
        text = str(end.get("prompt") or "").strip()
        if not text:
            raise GenerateError(f"interpolation end {name} needs a prompt or an image")
        warnings.append(prompt_warning(_catalogue_entry(s.decoder), text))
        return pipe.prior_embedding(pipe.text_embedding([text]), prior, prior_noise, prior_steps, prior_guidance)[0]

    ea, eb = embedding(a, "A"), embedding(b, "B")
    embs = interpolate_embeddings(ea, eb, int(frames))  # K x D
    insights = explainer.explain(embs)
    K = len(embs)
    x_start = x_T.expand(K, -1, -1, -1).clone()  # the same noise for every frame
    yield Partial(GeneratePreview("prior", 0, steps, None, insights))
    x = x_start
    for step in pipe.decode_iter(embs, x_start, steps, guidance):
        x = step.x
        yield Progress(step.index / step.total, f"denoising {step.index}/{step.total}", step.index, step.total)
        if preview_every > 0 and step.index % preview_every == 0 and step.index < step.total:
            yield Partial(GeneratePreview("decoder", step.index, step.total, to_uint8(step.x0), insights))
    strip = to_uint8(x)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    gif = Path(gif_path) if gif_path else gallery_dir() / "interpolations" / f"{stamp}-s{seed}.gif"
    save_gif(list(strip), gif, frame_ms=frame_ms)
    params = {"model": s.id, "a": a, "b": b, "frames": K, "seed": int(seed), "steps": int(steps),
              "guidance": float(guidance), "prior": prior, "created": now()}
    return InterpolationResult(strip, str(gif), insights, params, time.perf_counter() - t0, combine(*warnings))


def export_gif_job(ctx, source: str, dest: str) -> str:
    """Copy an interpolation GIF to where the user chose."""
    src, dst = Path(source), Path(dest)
    if not src.is_file():
        raise GenerateError(f"{src} no longer exists: run the interpolation again")
    if dst.suffix.lower() != ".gif":
        dst = dst.with_suffix(".gif")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    except OSError as exc:
        raise GenerateError(f"cannot write {dst}: {exc.strerror or exc}") from None
    return str(dst)


# ---------------------------------------------------------------------------- gallery and models
def gallery_job(ctx, action: str = "list", path: str | None = None, value: bool = True,
                favourites_only: bool = False):
    """list -> [GalleryItem]; read -> params dict; favourite -> bool; delete -> None."""
    from engine.generate import gallery

    if action == "list":
        return gallery.list_items(favourites_only=favourites_only)
    if not path:
        raise GenerateError(f"gallery action {action!r} needs a path")
    if action == "read":
        return gallery.read_params(path)
    if action == "favourite":
        return gallery.set_favourite(path, bool(value))
    if action == "delete":
        gallery.delete(path)
        return None
    raise GenerateError(f"unknown gallery action {action!r} (list, read, favourite, delete)")


@dataclass(frozen=True)
class GeneratorInfo:
    id: str
    name: str
    ready: bool
    detail: str  # why not ready
    priors: tuple[str, ...]
    negative_prompt: bool
    image_size: int
    description: str
    kind: str


def models_job(ctx) -> list[GeneratorInfo]:
    """The text-to-image pipelines and whether all their parts are on this machine."""
    from engine import catalogue
    from engine.catalogue.locate import state_of
    from engine.generate.unclip import pipelines

    out = []
    for s in pipelines():
        ids = [s.decoder, *s.priors.values()] + ([s.clip] if s.clip else [])
        problems = []
        for model_id in ids:
            try:
                st = state_of(catalogue.get(model_id))
            except PatchworkError as exc:
                problems.append(str(exc))
                continue
            if st.state not in ("ready", "user file"):
                problems.append(f"{model_id}: {st.state}" + (f" ({st.detail})" if st.detail else ""))
        out.append(GeneratorInfo(s.id, s.name, not problems, "; ".join(problems), tuple(s.priors),
                                 s.negative_prompt, s.image_size, s.description, s.kind))
    return out
