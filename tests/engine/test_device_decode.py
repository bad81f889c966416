"""GPU indexing's decode path, run on the CPU: JPEG bytes decoded in batches by torchvision and
preprocessed as tensors give the CPU path's model inputs; files the device decoder refuses go
to the CPU decoder; an index built that way holds the same vectors and the same bad files."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torchvision")

from engine.catalogue.entry import Preprocess  # noqa: E402
from engine.images import open_image  # noqa: E402
from engine.preprocess import to_input  # noqa: E402
from engine.search import device_decode  # noqa: E402

PP = Preprocess(224, 256, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic")


def photo(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)  # smooth, photo-like


def jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def test_device_inputs_match_the_cpu_path():
    datas = [jpeg(photo(640, 480, 0)), jpeg(photo(300, 500, 1)), jpeg(photo(200, 150, 2).convert("L"))]
    got = device_decode.prepare_batch(datas, "cpu", PP)
    for data, x in zip(datas, got):
        want = to_input(open_image("x.jpg", data=data), PP)
        assert x is not None and tuple(x.shape) == want.shape == (3, 224, 224)
        diff = np.abs(x.numpy() - want)
        assert diff.mean() < 0.01 and diff.max() < 0.25, (diff.mean(), diff.max())


def test_exif_orientation_is_applied():
    img = photo(400, 200, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise when shown
    data = jpeg(img, exif=exif.tobytes())
    (x,) = device_decode.decode_batch([data], "cpu")
    assert tuple(x.shape[1:]) == (400, 200)
    want = np.asarray(open_image("x.jpg", data=data))
    assert want.shape[:2] == (400, 200)


def test_what_the_device_cannot_take_is_left_for_the_cpu():
    png = io.BytesIO()
    photo(64, 64, 4).save(png, "PNG")
    cmyk = jpeg(photo(64, 64, 5).convert("CMYK"))
    good = jpeg(photo(64, 64, 6))
    damaged = good[:20] + b"\x00" * 40 + good[60:200]
    out = device_decode.prepare_batch([png.getvalue(), cmyk, good, damaged, b"\xff\xd8\xff"], "cpu", PP)
    assert out[0] is None and out[1] is None and out[4] is None
    assert out[2] is not None and tuple(out[2].shape) == (3, 224, 224)
    assert out[3] is None or tuple(out[3].shape) == (3, 224, 224)  # libjpeg may recover a damaged body


def test_index_with_device_decoding_matches_cpu_decoding(tmp_path):
    from engine.context import EngineContext
    from engine.search import db
    from engine.search.index import index_job

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        photo(640, 480, 10 + i).save(folder / f"{i}.jpg", quality=90)
    photo(320, 240, 20).save(folder / "p.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)

    def run(flag: bool):
        ctx = EngineContext("cpu", 4000)
        path = str(tmp_path / f"{flag}.sqlite3")
        gen = index_job(ctx, str(folder), "labelspace-lite0", db_path=path, device_decode=flag)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            res = stop.value
        con = db.connect(path)
        try:
            paths, mat = db.load_vectors(con, "labelspace-lite0", res.root)
        finally:
            con.close()
        return res, dict(zip(paths, mat))

    cpu, device = run(False), run(True)
    assert cpu[0].bad == device[0].bad and len(device[0].bad) == 1 and "broken.jpg" in device[0].bad[0][0]
    assert cpu[1].keys() == device[1].keys() and len(device[1]) == 6
    for p, v in cpu[1].items():  # not identical: the CPU path decodes JPEGs in draft mode (DCT-scaled)
        w = device[1][p]
        assert float(v @ w / np.linalg.norm(v) / np.linalg.norm(w)) >= 0.97, p
