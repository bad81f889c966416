"""Train panel without Fashion-MNIST on the machine: no failed job, Start disabled, and
"Get Fashion-MNIST" downloads over real HTTP (a slow loopback server here) with a progress
bar and a Stop that keeps what arrived."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.data import fashion_mnist
from engine.jobs import JobState
from tests.engine.loopback import LoopbackServer


@pytest.fixture
def no_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian-package")
    monkeypatch.delenv("PATCHWORK_FASHION_MNIST", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = LoopbackServer().start()
    name = "train-images-idx3-ubyte.gz"
    srv.files[f"/fm/{name}"] = bytes(2_000_000)
    srv.behaviour.throttle[f"/fm/{name}"] = (20_000, 0.05)  # ~400 kB/s: long enough to press Stop
    monkeypatch.setenv("PATCHWORK_FASHION_MNIST_MIRRORS", srv.url("/fm"))
    yield srv
    srv.stop()


def test_missing_dataset_offers_the_download_and_stop_keeps_the_part(no_dataset, window, qtbot):
    window.tabs.setCurrentWidget(window.panels["train"])
    panel = window.panels["train"]
    panel.set_dataset("fashion-mnist")
    getter = panel.fmnist_getter
    qtbot.waitUntil(lambda: getter.available is False and getter.isVisible(), timeout=30_000)
    assert "dataset-fashion-mnist" in getter.message.text()
    assert not panel.start_button.isEnabled()
    qtbot.wait(600)  # the preview timer has fired by now
    assert "Get Fashion-MNIST" in panel.preview.summary.text()
    assert not [j for j in window.bridge.jobs() if j.state is JobState.FAILED], "a red job the user never started"

    qtbot.mouseClick(getter.get_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getter.bar.isVisible() and getter.bar.value() > 0, timeout=30_000)
    qtbot.mouseClick(getter.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getter.job is None, timeout=5_000)
    assert "resumes" in getter.message.text()
    part = fashion_mnist.download_dir() / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz.part"
    assert part.is_file() and 0 < part.stat().st_size < 2_000_000
