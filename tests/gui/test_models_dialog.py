"""The Models manager end to end: real catalogue rows, a real download from a loopback hub,
a real import of a user's state dict, and the downloaded model classifying in the Classify panel."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.engine.loopback import LoopbackServer
from tests.gui.conftest import sample

TIMM_REPO = "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"


def _vit_tiny_safetensors(seed: int) -> bytes:
    """A random-init timm ViT-Ti/16 in the hub's published format (safetensors bytes)."""
    import timm
    import torch
    from safetensors.torch import save

    torch.manual_seed(seed)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=1000)
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A loopback Hugging Face hub serving the timm ViT-Ti repo; caches in tmp; online."""
    server = LoopbackServer().start()
    server.add_repo(TIMM_REPO, {"model.safetensors": _vit_tiny_safetensors(0)})
    monkeypatch.setenv("HF_ENDPOINT", server.url())
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield server
    server.stop()


def _state(dialog, model_id: str) -> str:
    row = dialog.row_of(model_id)
    return dialog.table.item(row, dialog.table.columnCount() - 1).text().removeprefix("✓ ") if row >= 0 else ""


def test_models_manager_lists_downloads_imports_and_the_model_classifies(hub, window, qtbot, tmp_path):
    from engine.catalogue import entries

    dialog = window.show_models_dialog()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == len(entries()), timeout=30_000)
    assert dialog.row_of("efficientnet-lite0") >= 0 and _state(dialog, "efficientnet-lite0") == "ready"
    assert _state(dialog, "timm-vit-tiny") == "needs download"
    lite = dialog.row_of("efficientnet-lite0")
    assert "classify" in dialog.table.item(lite, 2).text()  # "Used by"
    assert dialog.table.item(lite, 4).text()  # licence

    # Download from the loopback hub: progress bar, then "ready", and no request went elsewhere.
    dialog.select("timm-vit-tiny")
    assert dialog.download_button.isEnabled()
    qtbot.mouseClick(dialog.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "timm-vit-tiny" not in dialog.downloads, timeout=60_000)
    qtbot.waitUntil(lambda: _state(dialog, "timm-vit-tiny") == "ready", timeout=30_000)
    assert dialog.message.text() == ""
    assert hub.seen("/resolve/")

    # The Classify panel's picker now offers it as ready, and it classifies a photo.
    panel = window.panels["classify"]
    picker = panel.model_picker
    qtbot.waitUntil(lambda: picker.is_ready("timm-vit-tiny"), timeout=30_000)
    picker.combo.setCurrentIndex(picker.combo.findData("timm-vit-tiny"))
    assert "ready" in picker.combo.currentText()
    panel.classify_path(sample("coffee.png"))
    qtbot.waitUntil(lambda: len(panel.top_labels()) == 5, timeout=60_000)
    assert panel.error_label.isHidden() and "ViT-Ti/16" in panel.details.text()

    # Import a user's .pth state dict (tensors only): recognised from its keys, listed as a user file.
    import torch
    from safetensors.torch import load

    weights = tmp_path / "my_vit.pth"
    torch.save(load(_vit_tiny_safetensors(1)), weights)
    dialog.import_file(str(weights))
    qtbot.waitUntil(lambda: dialog.message.text().startswith("Imported as"), timeout=60_000)
    model_id = dialog.message.text().removeprefix("Imported as ").rstrip(".")
    qtbot.waitUntil(lambda: _state(dialog, model_id) == "ready", timeout=30_000)
    assert dialog.table.item(dialog.row_of(model_id), 5).text() == "your file"
    dialog.select(model_id)
    assert dialog.delete_button.isEnabled()

    # A pickle that is not a plain state dict is refused with a message, and nothing is added.
    rows = dialog.table.rowCount()
    evil = tmp_path / "evil.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, evil)  # a pickled module: needs code to load
    dialog.import_file(str(evil))
    qtbot.waitUntil(lambda: dialog.message.text().startswith("⚠"), timeout=30_000)
    assert "evil.pt" in dialog.message.text()
    assert dialog.table.rowCount() == rows
