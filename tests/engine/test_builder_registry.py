"""Cards name registered builders only: old "module:function" strings map through a fixed table,
anything else is refused before a single module is imported."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import catalogue
from engine.models import registry
from engine.catalogue.load import build_model
from engine.errors import ModelError
from engine.paths import data_dir, runs_dir

REPO = Path(__file__).resolve().parents[2]
VIT = REPO / "resources" / "checkpoints" / "fmnist-vit-tiny"


def test_every_registered_name_resolves_to_the_function_its_module_registered():
    for name in registry.names():
        fn = registry.resolve(name)
        assert callable(fn) and fn.__module__ == registry.HOMES[name] or name == "efficientnet_lite", name
    assert set(registry.LEGACY.values()) <= set(registry.HOMES)


def test_every_catalogue_entry_names_a_registered_builder():
    for entry in catalogue.entries():
        assert entry.builder in registry.HOMES, (entry.id, entry.builder)


def _card(builder: str, model_id: str) -> dict:
    card = json.loads((VIT / "card.json").read_text())
    card["catalogue"].update(id=model_id, name=f"{model_id} test", builder=builder)
    return card


def test_an_old_run_card_with_a_module_path_still_loads():
    run = runs_dir() / "old-format-run"
    run.mkdir(parents=True, exist_ok=True)
    shutil.copy(VIT / "model.safetensors", run / "model.safetensors")
    card = _card("engine.train.vit:build_from_run", "old-format-run")
    card.update(status="finished", weights="model.safetensors")
    (run / "card.json").write_text(json.dumps(card))
    entry = catalogue.get("old-format-run")
    assert entry.builder == "vit"
    model = build_model(entry)
    builtin = build_model(catalogue.get("fmnist-vit-tiny"))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), builtin(x))


def _plant(builder: str) -> str:
    folder = data_dir() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(VIT / "model.safetensors", folder / "planted.safetensors")
    card = _card(builder, "planted")
    card.update(weights="planted.safetensors")
    (folder / "planted.json").write_text(json.dumps(card))
    return "planted"


@pytest.mark.parametrize("builder", ["this:s", "os:system", "engine.models.builders:load_strict", "timm:create"])
def test_a_planted_builder_is_refused_and_nothing_is_imported(builder):
    sys.modules.pop("this", None)
    entry = catalogue.get(_plant(builder))
    with pytest.raises(ModelError, match="not one Patchwork registered"):
        build_model(entry)
    assert "this" not in sys.modules


def test_the_cli_refuses_a_planted_card_in_one_line(tmp_path):
    home = tmp_path / "home"
    folder = home / "data" / "models"
    folder.mkdir(parents=True)
    shutil.copy(VIT / "model.safetensors", folder / "planted.safetensors")
    card = _card("this:s", "planted")
    card.update(weights="planted.safetensors")
    (folder / "planted.json").write_text(json.dumps(card))
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo)
    proc = subprocess.run([sys.executable, "main.py", "classify", str(photo),
                           "--model", "planted", "--device", "cpu"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PATCHWORK_HOME": str(home)})
    assert proc.returncode == 1, proc.stderr
    assert "Beautiful is better than ugly" not in proc.stdout + proc.stderr  # the Zen of Python never ran
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'this:s'" in errors[0] and "Traceback" not in proc.stderr
