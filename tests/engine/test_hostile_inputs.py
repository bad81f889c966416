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

from engine.cli_support import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE

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


def _bomb(path: Path) -> None:
    """A 60-byte PNG that claims to be 30,000 × 30,000 pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A folder of hostile files next to a good photo; names are what the cases refer to."""
    from PIL import Image

    d = tmp_path_factory.mktemp("hostile")
    shutil.copy(COFFEE, d / "good.png")
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("eggs\nmilk\n")
    (d / "folder.jpg").mkdir()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(d / "one_pixel.png")
    _bomb(d / "bomb.png")
    (Path(os.fsdecode(os.path.join(os.fsencode(d), b"odd\xffname.jpg")))).write_text("not an image")
    (d / "photos").mkdir()
    shutil.copy(COFFEE, d / "photos" / "coffee.png")
    (d / "empty_dir").mkdir()
    (d / "taken").write_text("keep me")
    (d / "settings.json").write_text("[1, 2")
    from main import main

    assert main(["index", str(d / "photos"), "--model", "fmnist-lit-tiny"]) == EXIT_OK  # a small searchable index
    return d


ODD = os.fsdecode(b"odd\xffname.jpg")
LONG_TEXT = "a photo of a shirt " * 527  # 10,013 characters
BAD, USAGE = EXIT_BAD_INPUT, EXIT_USAGE
VIT, MAE = ["--model", "fmnist-vit-tiny"], ["--model", "fmnist-mae-tiny"]
GEN = ["--n", "1", "--steps", "2", "--prior", "regression"]

#: (id, argv with {d} for the hostile folder, exit code, text the error line must hold (None: no error)).
CASES = [
    # classify (EfficientNet-Lite0 unless a --model is given)
    ("classify-missing", ["classify", "{d}/nope.jpg"], BAD, "nope.jpg"),
    ("classify-dir", ["classify", "{d}/folder.jpg"], BAD, "folder.jpg"),
    ("classify-zero-bytes", ["classify", "{d}/empty.jpg"], BAD, "empty.jpg"),
    ("classify-text-as-jpg", ["classify", "{d}/text.jpg"], BAD, "text.jpg"),
    ("classify-bomb", ["classify", "{d}/bomb.png"], BAD, "bomb.png"),
    ("classify-non-utf8-name", ["classify", "{d}/" + ODD], BAD, "odd\\xffname.jpg"),
    ("classify-1x1", ["classify", "{d}/one_pixel.png", *VIT], EXIT_OK, None),
    ("classify-top-huge", ["classify", "{d}/good.png", *VIT, "--top", str(10**9)], EXIT_OK, None),
    ("classify-top-zero", ["classify", "{d}/good.png", "--top", "0"], USAGE, "--top"),
    ("classify-top-negative", ["classify", "{d}/good.png", "--top", "-3"], USAGE, "--top"),
    ("classify-top-not-a-number", ["classify", "{d}/good.png", "--top", "many"], USAGE, "--top"),
    ("classify-unknown-model", ["classify", "{d}/good.png", "--model", "no-such-model"], BAD, "no-such-model"),
    ("classify-wrong-family", ["classify", "{d}/good.png", "--model", "fmnist-mae-tiny"], BAD, "not a classifier"),
    # attention
    ("attention-missing", ["attention", "{d}/nope.jpg", *VIT], BAD, "nope.jpg"),
    ("attention-dir", ["attention", "{d}/folder.jpg", *VIT], BAD, "folder.jpg"),
    ("attention-zero-bytes", ["attention", "{d}/empty.jpg", *VIT], BAD, "empty.jpg"),
    ("attention-text-as-jpg", ["attention", "{d}/text.jpg", *VIT], BAD, "text.jpg"),
    ("attention-bomb", ["attention", "{d}/bomb.png", *VIT], BAD, "bomb.png"),
    ("attention-non-utf8-name", ["attention", "{d}/" + ODD, *VIT], BAD, "odd\\xffname.jpg"),
    ("attention-1x1", ["attention", "{d}/one_pixel.png", *VIT, "--method", "rollout"], EXIT_OK, None),
    ("attention-unknown-model", ["attention", "{d}/good.png", "--model", "no-such-model"], BAD, "no-such-model"),
    ("attention-layer-zero", ["attention", "{d}/good.png", *VIT, "--layer", "0"], USAGE, "blocks"),
    ("attention-layer-huge", ["attention", "{d}/good.png", *VIT, "--layer", str(10**9)], BAD, "block"),
    ("attention-head-zero", ["attention", "{d}/good.png", *VIT, "--head", "0"], USAGE, "heads"),
    ("attention-patch-garbage", ["attention", "{d}/good.png", *VIT, "--patch", "x,y"], USAGE, "--patch"),
    ("attention-opacity", ["attention", "{d}/good.png", *VIT, "--opacity", "2"], USAGE, "--opacity"),
    ("attention-discard-ratio", ["attention", "{d}/good.png", *VIT, "--discard-ratio", "1"], USAGE,
     "--discard-ratio"),
    ("attention-bad-method", ["attention", "{d}/good.png", *VIT, "--method", "magic"], USAGE, "--method"),
    ("attention-out-unwritable", ["attention", "{d}/good.png", *VIT, "--out", "{d}/taken/map.png"], BAD,
     "taken/map.png"),
    # mae
    ("mae-missing", ["mae", "{d}/nope.jpg"], BAD, "nope.jpg"),
    ("mae-dir", ["mae", "{d}/folder.jpg"], BAD, "folder.jpg"),
    ("mae-zero-bytes", ["mae", "{d}/empty.jpg"], BAD, "empty.jpg"),
    ("mae-text-as-jpg", ["mae", "{d}/text.jpg"], BAD, "text.jpg"),
    ("mae-bomb", ["mae", "{d}/bomb.png"], BAD, "bomb.png"),
    ("mae-1x1", ["mae", "{d}/one_pixel.png"], EXIT_OK, None),
    ("mae-mask-ratio-1.5", ["mae", "{d}/good.png", "--mask-ratio", "1.5"], USAGE, "--mask-ratio"),
    ("mae-mask-ratio-negative", ["mae", "{d}/good.png", "--mask-ratio", "-0.1"], USAGE, "--mask-ratio"),
    ("mae-mask-ratio-nan", ["mae", "{d}/good.png", "--mask-ratio", "nan"], USAGE, "--mask-ratio"),
    ("mae-unknown-model", ["mae", "{d}/good.png", "--model", "no-such-model"], BAD, "no-such-model"),
    ("mae-not-an-mae", ["mae", "{d}/good.png", *VIT], BAD, "fmnist-vit-tiny"),
    ("mae-keep-garbage", ["mae", "{d}/good.png", "--keep", "a,b"], USAGE, "--keep"),
    ("mae-keep-out-of-range", ["mae", "{d}/good.png", "--keep", "0,99999"], USAGE, "--keep"),
    ("mae-seed-huge", ["mae", "{d}/good.png", "--seed", str(10**30)], USAGE, "--seed"),
    ("generate-seed-negative", ["generate", "a shirt", "--seed", "-1", "--out", "{d}/gen"], USAGE, "--seed"),
    # match
    ("match-missing", ["match", "{d}/nope.jpg", "a shirt"], BAD, "nope.jpg"),
    ("match-zero-bytes", ["match", "{d}/empty.jpg", "a shirt"], BAD, "empty.jpg"),
    ("match-bomb", ["match", "{d}/bomb.png", "a shirt"], BAD, "bomb.png"),
    ("match-empty-caption", ["match", "{d}/good.png", "  "], USAGE, "caption"),
    ("match-10000-char-caption", ["match", "{d}/good.png", LONG_TEXT], EXIT_OK, None),
    ("match-unknown-model", ["match", "{d}/good.png", "a shirt", "--model", "no-such-model"], BAD, "no-such-model"),
    ("match-too-many-captions", ["match", "{d}/good.png", *["a shirt"] * 200], USAGE, "captions"),
    # generate
    ("generate-empty-prompt", ["generate", "", "--out", "{d}/gen"], USAGE, "PROMPT"),
    ("generate-10000-char-prompt", ["generate", LONG_TEXT, *GEN, "--out", "{d}/gen_long"], EXIT_OK, None),
    ("generate-negative-steps", ["generate", "a shirt", "--steps", "-5", "--out", "{d}/gen"], USAGE, "steps"),
    ("generate-huge-steps", ["generate", "a shirt", "--steps", str(10**9), "--out", "{d}/gen"], USAGE, "steps"),
    ("generate-zero-images", ["generate", "a shirt", "--n", "0", "--out", "{d}/gen"], USAGE, "number of images"),
    ("generate-negative-guidance", ["generate", "a shirt", "--guidance", "-1", "--out", "{d}/gen"], USAGE,
     "guidance"),
    ("generate-unknown-model", ["generate", "a shirt", *GEN, "--model", "no-such-model", "--out", "{d}/gen"], BAD,
     "no-such-model"),
    ("generate-image-missing", ["generate", "--image", "{d}/nope.jpg", *GEN, "--out", "{d}/gen"], BAD, "nope.jpg"),
    ("generate-image-text", ["generate", "--image", "{d}/text.jpg", *GEN, "--out", "{d}/gen"], BAD, "text.jpg"),
    ("generate-image-bomb", ["generate", "--image", "{d}/bomb.png", *GEN, "--out", "{d}/gen"], BAD, "bomb.png"),
    ("generate-out-is-a-file", ["generate", "a shirt", *GEN, "--out", "{d}/taken"], BAD, "taken"),
    # index and search
    ("index-missing-folder", ["index", "{d}/no_such_folder"], BAD, "no_such_folder"),
    ("index-file-for-folder", ["index", "{d}/good.png"], BAD, "good.png"),
    ("index-unknown-model", ["index", "{d}/photos", "--model", "no-such-model"], BAD, "no-such-model"),
    ("search-empty-query", ["search", "  ", "--folder", "{d}/photos"], USAGE, "QUERY"),
    ("search-top-zero", ["search", "coffee", "--folder", "{d}/photos", "--top", "0"], USAGE, "--top"),
    ("search-missing-folder", ["search", "coffee", "--folder", "{d}/no_such_folder"], BAD, "no_such_folder"),
    ("search-unknown-model", ["search", "coffee", "--folder", "{d}/photos", "--model", "no-such-model"], BAD,
     "no-such-model"),
    ("search-bomb-as-query", ["search", "{d}/bomb.png", "--folder", "{d}/photos", "--no-index",
                              "--model", "fmnist-lit-tiny"], BAD, "bomb.png"),
    ("search-10000-char-query", ["search", LONG_TEXT, "--folder", "{d}/photos", "--no-index",
                                 "--model", "fmnist-lit-tiny"], EXIT_OK, None),
    ("search-top-huge", ["search", "a shirt", "--folder", "{d}/photos", "--no-index", "--model", "fmnist-lit-tiny",
                         "--top", str(10**9)], EXIT_OK, None),
    ("search-min-score-garbage", ["search", "coffee", "--folder", "{d}/photos", "--min-score", "high"], USAGE,
     "--min-score"),
    # train
    ("train-unknown-recipe", ["train", "no_such_recipe"], BAD, "no_such_recipe"),
    ("train-set-without-value", ["train", "supervised", "--set", "lr"], USAGE, "KEY=VALUE"),
    ("train-unknown-setting", ["train", "supervised", "--set", "lerning_rate=1"], BAD, "lerning_rate"),
    ("train-negative-batch", ["train", "supervised", "--set", "batch_size=-4"], BAD, "batch_size"),
    ("train-config-missing", ["train", "supervised", "--config", "{d}/nope.json"], BAD, "nope.json"),
    ("train-config-garbage", ["train", "supervised", "--config", "{d}/settings.json"], BAD, "settings.json"),
    ("train-resume-missing", ["train", "supervised", "--resume", "{d}/no_such_run"], BAD, "no_such_run"),
    ("train-dataset-missing", ["train", "supervised", "--dataset", "{d}/no_such_data", "--set", "max_steps=1"],
     BAD, "no_such_data"),
    ("train-dataset-empty-folder", ["train", "supervised", "--dataset", "{d}/empty_dir", "--set", "max_steps=1"],
     BAD, "empty_dir"),
    # the command line itself
    ("unknown-command", ["paint", "x"], USAGE, "paint"),
    ("models-unknown-option", ["models", "--colour"], USAGE, "--colour"),
    ("classify-no-image", ["classify"], USAGE, "IMAGE"),
]


@pytest.mark.parametrize("case, argv, code, names", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(capsys, hostile, case, argv, code, names):
    before = set(hostile.rglob("*"))
    argv = [a.replace("{d}", str(hostile)) for a in argv]
    res = cli(capsys, *argv)
    text = res.out + res.err
    assert "Traceback" not in text, text
    if names is None:
        assert res.code == code, res.err
        assert not [line for line in res.err.splitlines() if "error:" in line], res.err
    else:
        assert_refused(res, code, names)
    new = set(hostile.rglob("*")) - before
    assert not [p for p in new if p.name.startswith(".tmp") or p.suffix == ".part"], new  # nothing half-written
    if code != EXIT_OK:
        assert not [p for p in new if p.is_file()], new  # a refused command writes nothing


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
