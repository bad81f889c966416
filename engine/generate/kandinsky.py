"""Kandinsky 2.2 through diffusers: a pretrained unCLIP-style prior + decoder (optional extra).

    prompt --KandinskyV22PriorPipeline--> image_embeds (+ negative_image_embeds)
           --KandinskyV22Pipeline (U-Net + MoVQ), callback_on_step_end--> image

diffusers runs its whole denoising loop inside one call, so the call runs in a helper
thread while the job's generator (on the engine thread, which does nothing else
meanwhile) relays the per-step previews that the step callback queues. Stop sets a flag
the callback checks at the next step, which ends the call; previews are decoded through
MoVQ every `preview_every` steps. diffusers is imported lazily: without the extra, a
clear message says how to install it.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np

from engine.errors import ModelError
from engine.jobs import Partial, Progress
from engine.models.builders import DIFFUSERS_HINT


class _Stopped(Exception):
    """Raised inside diffusers' step callback to end the call early."""


def require_diffusers():
    """The diffusers module, or a ModelError that says how to install the extra."""
    try:
        import diffusers
    except ImportError:
        raise ModelError("Kandinsky 2.2 needs the optional diffusers extra, which is not installed. "
                         f"Install it with: {DIFFUSERS_HINT} (then download the two Kandinsky 2.2 models "
                         "from Models → Manage models).") from None
    return diffusers


def _latents_to_uint8(movq, latents) -> np.ndarray:
    """MoVQ-decode latents (B, 4, h, w) -> (B, H, W, 3) uint8."""
    import torch

    with torch.inference_mode():
        img = movq.decode(latents, force_not_quantize=True)["sample"]  # B x 3 x H x W in [-1, 1]
    img = ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return img.permute(0, 2, 3, 1).cpu().numpy()  # B x H x W x 3


def kandinsky_job(ctx, s, *, prompt: str, negative_prompt: str, seed: int, steps: int, guidance: float, n: int,
                  prior_steps: int, prior_guidance: float, image: str | None, preview_every: int, save: bool,
                  out_dir: str | None, height: int = 512, width: int = 512):
    require_diffusers()
    import torch

    from engine.catalogue.load import load_model
    from engine.generate.gallery import save_png
    from engine.generate.results import GeneratedImage, GenerateError, GeneratePreview, GenerateResult, now

    t0 = time.perf_counter()
    yield Progress(None, "loading Kandinsky 2.2 (prior and decoder)")
    prior = load_model(ctx, s.priors["diffusion"]).pipeline
    decoder = load_model(ctx, s.decoder).pipeline
    # the published scheduler (steps_offset 1, "leading") indexes past its table at 1000 steps
    cfg = decoder.scheduler.config
    max_steps = cfg.num_train_timesteps - int(getattr(cfg, "steps_offset", 0) or 0)
    if steps > max_steps:
        raise GenerateError(f"{s.name} takes at most {max_steps} decoder steps (got {steps})")
    # image i draws from its own generator seeded seed + i (as the tiny pipeline does), so
    # its PNG's seed with n = 1 gives it again; the prior and then the decoder draw from them
    generator = [torch.Generator(device="cpu").manual_seed(int(seed) + i) for i in range(n)]
    yield Progress(None, "prior: text -> image embedding")
    if image:
        from PIL import Image

        with Image.open(image) as img:
            picture = img.convert("RGB")
        embeds = prior.interpolate([picture], [1.0], num_inference_steps=prior_steps, generator=generator,
                                   negative_prompt=negative_prompt or "")
        image_embeds = embeds.image_embeds.repeat(n, 1)
        negative_embeds = embeds.negative_image_embeds.repeat(n, 1)
    else:
        out = prior(prompt, negative_prompt=negative_prompt or None, num_images_per_prompt=n,
                    num_inference_steps=prior_steps, guidance_scale=prior_guidance, generator=generator)
        image_embeds, negative_embeds = out.image_embeds, out.negative_image_embeds

    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    movq = decoder.movq

    def on_step_end(pipe, i, t, tensors):
        if stop.is_set():
            raise _Stopped()
        step = i + 1
        preview = None
        if preview_every > 0 and step % preview_every == 0 and step < steps:
            latents = tensors["latents"]
            if guidance > 1.0 and len(latents) == 2 * n:  # the guided half only
                latents = latents[:n]
            preview = _latents_to_uint8(movq, latents)
        events.put(("step", step, preview))
        return tensors

    def run():
        try:
            result = decoder(image_embeds=image_embeds, negative_image_embeds=negative_embeds, height=height,
                             width=width, num_inference_steps=steps, guidance_scale=guidance, generator=generator,
                             output_type="np", callback_on_step_end=on_step_end,
                             callback_on_step_end_tensor_inputs=["latents"])
            events.put(("done", result.images, None))
        except _Stopped:
            events.put(("stopped", None, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread
            events.put(("error", exc, None))

    worker = threading.Thread(target=run, name="kandinsky-decoder", daemon=True)
    worker.start()
    images = None
    try:
        while True:
            try:
                kind, a, b = events.get(timeout=0.2)
            except queue.Empty:
                yield None  # a cancel checkpoint while diffusers computes a step
                continue
            if kind == "step":
                yield Progress(a / steps, f"denoising {a}/{steps}", a, steps)
                if b is not None:
                    yield Partial(GeneratePreview("decoder", a, steps, b, ()))
            elif kind == "done":
                images = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)  # B x H x W x 3
                break
            elif kind == "error":
                raise a
            else:
                break
    finally:
        stop.set()
        worker.join(timeout=60)
    if images is None:
        raise ModelError("Kandinsky 2.2 stopped before finishing")
    common = {"model": s.id, "prompt": prompt, "negative_prompt": negative_prompt, "steps": steps,
              "guidance": guidance, "prior_steps": prior_steps, "prior_guidance": prior_guidance,
              "kind": "variation" if image else "text", "batch_seed": seed, "created": now(),
              "width": width, "height": height}
    out_images = []
    for i, px in enumerate(images):
        params = {**common, "seed": seed + i, "index": i}
        path = str(save_png(px, params, out_dir)) if save else None
        out_images.append(GeneratedImage(px, seed + i, params, path))
    return GenerateResult(tuple(out_images), (), s.id, {**common, "seed": seed, "n": n}, time.perf_counter() - t0)
