"""A panel's automatic first run (a model on its first sample) waits until the panel is shown, so
the ALBEF and MAE models of tabs the user never opens are not loaded at start."""
from __future__ import annotations

import pytest

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")

MODELS = {"fmnist-albef-tiny", "fmnist-mae-tiny"}


def has_fmnist(panel) -> bool:
    return panel.samples is not None and any("fashion-mnist" in p for p in panel.samples.paths())


def test_match_and_mae_run_only_once_shown(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    from gui.app import create_window

    win, bridge = create_window("cpu")
    qtbot.addWidget(win)
    kinds: list[str] = []  # every request the panels submit from here on
    submit = bridge.submit

    def recording(request, *args, **kwargs):
        kinds.append(request)
        return submit(request, *args, **kwargs)

    monkeypatch.setattr(bridge, "submit", recording)
    try:
        with qtbot.waitSignal(win.first_painted, timeout=10_000):
            win.show()
        match, mae = win.panels["match"], win.panels["mae"]
        assert win.tabs.currentWidget() not in (match, mae)
        qtbot.waitUntil(lambda: has_fmnist(match) and has_fmnist(mae), timeout=60_000)  # the samples load at start
        qtbot.waitUntil(lambda: bridge.status is not None, timeout=10_000)
        qtbot.wait(300)
        assert "match" not in kinds and "mae" not in kinds
        assert match.current_path is None and mae.current_path is None
        assert not MODELS & {m for m, _ in bridge.status.loaded_models}

        win.tabs.setCurrentWidget(match)
        qtbot.waitUntil(lambda: match.results_shown == 1, timeout=60_000)
        assert kinds.count("match") == 1 and "mae" not in kinds
        assert "fashion-mnist" in match.result.path

        win.tabs.setCurrentWidget(mae)
        qtbot.waitUntil(lambda: mae.results_shown == 1, timeout=60_000)
        win.tabs.setCurrentWidget(match)  # shown again: nothing new runs
        qtbot.wait(300)
        assert kinds.count("match") == 1 and kinds.count("mae") == 1
        assert match.results_shown == 1 and mae.results_shown == 1
    finally:
        bridge.shutdown()
