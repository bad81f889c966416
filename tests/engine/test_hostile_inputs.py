"""Hostile inputs against every command, run in-process through main.main(argv).

Each case asserts what the README's exit-code table promises: no traceback, one `error:` line
that names the input, the documented exit code, and no partial output file left behind.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE

SKIMAGE_DATA = Path(__import__("importlib.util").util.find_spec("skimage").submodule_search_locations[0]) / "data"
COFFEE = str(SKIMAGE_DATA / "coffee.png")


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def cli(capsys, *argv: str) -> Outcome:
    from main import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_refused(res: Outcome, code: int, names: str, leftovers: list[Path] = ()) -> None:
    text = res.out + res.err
    assert "Traceback" not in text, text
    errors = [line for line in res.err.splitlines() if "error:" in line]
    assert len(errors) == 1, res.err
    assert names in errors[0], (names, errors[0])
    assert res.code == code, (res.code, res.err)
    for path in leftovers:
        assert not path.exists(), path
        assert not list(path.parent.glob(".tmp-*")) if path.parent.is_dir() else True


@pytest.fixture
def files(tmp_path):
    """A folder of hostile files next to a good photo."""
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(COFFEE, d / "good.png")
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("eggs\nmilk\n")
    (d / "a_folder.jpg").mkdir()
    from PIL import Image

    Image.new("RGB", (1, 1), (200, 10, 10)).save(d / "one_pixel.png")
    return d


# --------------------------------------------------------------------------- --out
OUT_CASES = [  # (command line before --out, what --out is, expected code)
    pytest.param(["attention", COFFEE, "--model", "fmnist-vit-tiny", "--method", "rollout"], "missing_dir",
                 id="attention-out-in-missing-folder"),
    pytest.param(["attention", COFFEE, "--model", "fmnist-vit-tiny"], "existing_dir", id="attention-out-is-a-folder"),
    pytest.param(["attention", COFFEE, "--model", "fmnist-vit-tiny"], "not_image_name", id="attention-out-not-png"),
    pytest.param(["mae", COFFEE], "existing_dir", id="mae-out-is-a-folder"),
    pytest.param(["mae", COFFEE], "missing_dir", id="mae-out-in-missing-folder"),
    pytest.param(["generate", "a photo of a sneaker", "--n", "1", "--steps", "2"], "existing_file",
                 id="generate-out-is-a-file"),
    pytest.param(["generate", "a photo of a sneaker", "--n", "1", "--steps", "2"], "below_a_file",
                 id="generate-out-below-a-file"),
]


def _out_path(kind: str, tmp_path: Path) -> tuple[str, list[Path]]:
    if kind == "missing_dir":
        target = tmp_path / "no" / "such" / "dir" / "x.png"
        return str(target), [target]
    if kind == "existing_dir":
        (tmp_path / "already").mkdir()
        return str(tmp_path / "already"), []
    if kind == "not_image_name":
        return str(tmp_path / "map.txt"), [tmp_path / "map.txt"]
    if kind == "existing_file":
        (tmp_path / "taken").write_text("keep me")
        return str(tmp_path / "taken"), []
    (tmp_path / "taken").write_text("keep me")
    return str(tmp_path / "taken" / "sub"), []


@pytest.mark.parametrize("argv, kind", OUT_CASES)
def test_a_bad_out_is_one_line_naming_it(capsys, tmp_path, argv, kind):
    out, leftovers = _out_path(kind, tmp_path)
    res = cli(capsys, *argv, "--out", out)
    assert_refused(res, EXIT_BAD_INPUT, out, leftovers)
    if kind == "existing_file":
        assert Path(out).read_text() == "keep me"


def test_a_good_out_is_written_whole(capsys, tmp_path):
    out = tmp_path / "map.png"
    res = cli(capsys, "attention", COFFEE, "--model", "fmnist-vit-tiny", "--method", "rollout", "--out", str(out))
    assert res.code == EXIT_OK, res.err
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == ["map.png"]
