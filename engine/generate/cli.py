"""Headless generation: `python main.py generate "PROMPT" [--seed S] [--steps N] [--guidance G]
[--n K] [--model ID] [--prior diffusion|regression] [--negative TEXT] [--size PX] --out DIR [--json]`.

Runs the same "generate" job as the Generate panel, through the engine thread, and writes
the PNGs (parameters in their text chunks) into --out. With --json, one JSON line per
image, then a summary line. Ctrl-C stops within one sampler step.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.cli_support import (EXIT_BAD_INPUT, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, exit_code, out_dir_problem, say_error,
                        warn_domain)


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    g = sub.add_parser("generate", parents=[common], help="generate images from a prompt (unCLIP)",
                       description="Text -> CLIP text embedding -> prior -> image embedding -> diffusion decoder. "
                                   "The default model is the built-in tiny unCLIP trained on Fashion-MNIST.")
    g.add_argument("prompt", nargs="?", default="", help='e.g. "a photo of a sneaker"')
    g.add_argument("--seed", type=int, default=0, help="image i uses seed S+i (default 0)")
    g.add_argument("--steps", type=int, default=50, help="DDIM steps of the decoder (default 50)")
    g.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3)")
    g.add_argument("--n", type=int, default=4, metavar="K", help="number of images (default 4)")
    g.add_argument("--model", default="fmnist-unclip-tiny", metavar="ID",
                   help="generator: fmnist-unclip-tiny (built in) or kandinsky-2-2 (needs the diffusers extra)")
    g.add_argument("--prior", default="diffusion", choices=("diffusion", "regression"),
                   help="which prior of the tiny unCLIP (default diffusion)")
    g.add_argument("--prior-steps", type=int, default=32, help="DDIM steps of the diffusion prior (default 32)")
    g.add_argument("--negative", default="", metavar="TEXT", help="negative prompt: guide away from it")
    g.add_argument("--size", type=int, default=None, metavar="PX",
                   help="square image size in pixels, Kandinsky only (default: the model's, 512)")
    g.add_argument("--image", default=None, metavar="PATH", help="make variations of this image instead")
    g.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs")
    g.add_argument("--json", action="store_true", help="one JSON line per image, then a summary")


def run(args) -> int:
    from engine.core import Engine
    from engine.errors import JobCancelled, JobFailed
    from engine.generate.jobs import _check, _check_size
    from engine.generate.results import GenerateError

    if not args.prompt.strip() and not args.image:
        say_error("give a PROMPT that is not empty (or --image PATH for variations)")
        return EXIT_USAGE
    try:
        _check(args.steps, args.guidance, args.n)
        _check_size(args.size)
    except GenerateError as exc:
        say_error(str(exc))
        return EXIT_USAGE
    if not 0 <= args.seed < 2**63 - 64:
        say_error(f"--seed must be between 0 and 2**63 - 65 (got {args.seed})")
        return EXIT_USAGE
    if args.prior_steps < 1:
        say_error(f"--prior-steps must be at least 1 (got {args.prior_steps})")
        return EXIT_USAGE
    if problem := out_dir_problem(args.out):
        say_error(problem)
        return EXIT_BAD_INPUT
    engine = Engine(device=args.device).start()
    try:
        engine.wait_ready()
        handle = engine.submit("generate", {
            "prompt": args.prompt, "negative_prompt": args.negative, "seed": args.seed, "steps": args.steps,
            "guidance": args.guidance, "n": args.n, "model": args.model, "prior": args.prior,
            "prior_steps": args.prior_steps, "image": args.image, "size": args.size, "out_dir": args.out,
            "preview_every": 0,
            "explain": False}, name="generate")
        try:
            while not handle.wait(0.25):
                pass
        except KeyboardInterrupt:
            handle.cancel()
            handle.wait()
        try:
            res = handle.result()
        except JobCancelled:
            print("stopped", file=sys.stderr)
            return EXIT_STOPPED
        except JobFailed as exc:
            say_error(exc.info.message)
            return exit_code(exc.info)
        warn_domain(res)
        for img in res.images:
            if args.json:
                print(json.dumps({"path": img.path, "seed": img.seed, "params": img.params}), flush=True)
            else:
                print(img.path)
        if args.json:
            print(json.dumps({"kind": "summary", "model": res.model, "images": len(res.images),
                              "seconds": round(res.seconds, 3), "notes": list(res.notes)}), flush=True)
        else:
            print(f"{len(res.images)} image(s) in {res.seconds:.2f} s with {res.model}", file=sys.stderr)
            for note in res.notes:
                print(f"note: {note}", file=sys.stderr)
        return EXIT_OK
    finally:
        engine.shutdown()
