"""GUI fixtures: a real main window with a real engine on the CPU."""
from __future__ import annotations

import os

import pytest

SKIMAGE_DATA = None


def sample(name: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", name)


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A shown MainWindow whose engine has started (after the first paint), on the CPU."""
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    from gui.app import create_window

    win, bridge = create_window("cpu")
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.first_painted, timeout=10_000):
        win.show()
    qtbot.waitUntil(lambda: bridge.engine.ready.is_set(), timeout=60_000)
    yield win
    bridge.shutdown()
