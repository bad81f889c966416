"""The headless command line, run as a user would: `python main.py ...` in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def coffee() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data", "coffee.png")


def patchwork(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_classify_json():
    proc = patchwork("classify", coffee(), "--json", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(rows) == 1
    row = rows[0]
    assert {"path", "top"} <= set(row)
    assert row["path"] == coffee()
    assert len(row["top"]) == 3
    assert row["top"][0]["label"] == "espresso"
    probs = [t["prob"] for t in row["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-5


def test_bad_file_is_reported_and_the_rest_still_run(tmp_path):
    bad = tmp_path / "shopping-list.jpg"
    bad.write_text("eggs\nmilk\n")
    proc = patchwork("classify", str(bad), coffee(), "--json", "--top", "2")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    errors = error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert str(bad) in errors[0] and "not an image" in errors[0]
    assert "Traceback" not in proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [r["path"] for r in rows] == [coffee()]
    assert rows[0]["top"][0]["label"] == "espresso"


def test_bogus_device_is_a_clean_failure():
    proc = patchwork("classify", coffee(), "--device", "bogus")
    assert proc.returncode not in (0, None), proc.stdout
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert "bogus" in errors[0] and "cpu" in errors[0]


def test_models_json():
    proc = patchwork("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    ids = [r["id"] for r in rows]
    assert "efficientnet-lite0" in ids
    lite = rows[ids.index("efficientnet-lite0")]
    assert lite["family"] == "classifier" and lite["state"] == "ready"


@pytest.mark.parametrize("argv", [["classify", "x.jpg", "--top", "0"]])
def test_top_must_be_positive(argv, capsys):
    # In-process (no torch import needed): the check comes before the engine starts.
    from engine.cli import build_parser, run
    from engine.cli_support import EXIT_USAGE

    assert run(build_parser().parse_args(argv)) == EXIT_USAGE
    assert "--top must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["search", "a cat", "--folder", "photos", "--no-index"], ["--device", "cpu", "map", "photos", "--json"],
    ["--device=cpu", "duplicates", "photos"], ["index", "photos"], ["classify", "x.jpg"], ["models", "--json"],
    ["export", "run-1", "--onnx", "m.onnx"], ["train", "supervised", "--set", "max_steps=3"],
])
def test_a_command_builds_only_its_own_parser_and_parses_the_same(argv):
    """main.py builds the parser for the command it runs (a search does not import map's modules);
    the arguments come out exactly as the full parser reads them."""
    import argparse

    from engine.cli import build_parser

    def commands(parser) -> set[str]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return set(sub.choices)

    lean, full = build_parser(argv), build_parser()
    assert vars(lean.parse_args(argv)) == vars(full.parse_args(argv))
    command = next(a for a in argv if not a.startswith("-") and a != "cpu")
    assert command in commands(lean) and commands(lean) < commands(full)
    assert commands(build_parser(["--help"])) == commands(full) == commands(build_parser(["no-such-command"]))
