"""Shared test set-up: headless Qt and a throwaway Patchwork home for the whole session."""
from __future__ import annotations

import os

import pytest

# Must be set before anything imports PySide6 (GUI tests, the app).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def patchwork_home(tmp_path_factory):
    """Point PATCHWORK_HOME at a session tmp dir so tests never touch the user's files."""
    home = tmp_path_factory.mktemp("patchwork-home")
    old = os.environ.get("PATCHWORK_HOME")
    os.environ["PATCHWORK_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PATCHWORK_HOME", None)
    else:
        os.environ["PATCHWORK_HOME"] = old
