"""Safe image decoding: every supported format, EXIF orientation, and clear reasons for bad files."""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.errors import BadImageError
from engine.images import is_image_path, open_image, preview_array

W, H = 48, 32


def gradient(w: int = W, h: int = H) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    arr = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def noisy(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def reason_of(path) -> str:
    with pytest.raises(BadImageError) as exc_info:
        open_image(path)
    assert exc_info.value.path == str(path)
    assert str(exc_info.value).startswith(str(path))
    return exc_info.value.reason


# ----------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt, suffix, lossless", [
    ("JPEG", ".jpg", False),
    ("PNG", ".png", True),
    ("WEBP", ".webp", False),
    ("BMP", ".bmp", True),
    ("TIFF", ".tif", True),
])
def test_formats_decode_to_rgb(tmp_path, fmt, suffix, lossless):
    src = gradient()
    path = tmp_path / f"img{suffix}"
    src.save(path, format=fmt)
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (W, H)
    diff = np.abs(np.asarray(img, np.int16) - np.asarray(src, np.int16))
    assert diff.max() <= (0 if lossless else 40), diff.max()
    assert is_image_path(path)


def test_heic(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path = tmp_path / "img.heic"
    try:
        gradient().save(path, format="HEIF")
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        pytest.skip(f"this pillow-heif cannot write HEIF: {exc}")
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (W, H)
    assert np.abs(np.asarray(img, np.int16) - np.asarray(gradient(), np.int16)).mean() < 20


def test_animated_gif_first_frame(tmp_path):
    red = Image.new("RGB", (W, H), (255, 0, 0))
    blue = Image.new("RGB", (W, H), (0, 0, 255))
    path = tmp_path / "anim.gif"
    red.save(path, save_all=True, append_images=[blue], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 2
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (W, H)
    r, g, b = img.getpixel((W // 2, H // 2))
    assert r > 200 and g < 50 and b < 50, (r, g, b)


def test_exif_orientation_is_applied(tmp_path):
    src = Image.new("RGB", (40, 20), (0, 0, 0))
    src.paste((255, 255, 255), (0, 0, 10, 20))  # left quarter white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    src.save(path, exif=exif, quality=95)
    img = open_image(path)
    assert img.size == (20, 40)
    # Orientation 6: the stored left edge ends up at the top.
    assert np.asarray(img)[:8].mean() > 200 and np.asarray(img)[-8:].mean() < 60


def test_rgba_png_is_composited_over_white(tmp_path):
    arr = np.zeros((H, W, 4), np.uint8)
    arr[..., 0] = 255  # red...
    arr[:, : W // 2, 3] = 255  # ...opaque on the left half, transparent on the right
    path = tmp_path / "alpha.png"
    Image.fromarray(arr, "RGBA").save(path)
    img = open_image(path)
    assert img.mode == "RGB" and img.size == (W, H)
    assert img.getpixel((2, 2)) == (255, 0, 0)
    assert img.getpixel((W - 2, 2)) == (255, 255, 255)


def test_palette_with_transparency_and_16_bit_grey(tmp_path):
    p = Image.new("P", (W, H), 0)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.paste(1, (0, 0, W // 2, H))
    path = tmp_path / "palette.png"
    p.save(path, transparency=0)
    img = open_image(path)
    assert img.mode == "RGB"
    assert img.getpixel((1, 1)) == (0, 255, 0) and img.getpixel((W - 1, 1)) == (255, 255, 255)

    grey = Image.fromarray(np.linspace(0, 65535, W * H).reshape(H, W).astype(np.uint16))
    path16 = tmp_path / "grey16.png"
    grey.save(path16)
    img16 = open_image(path16)
    assert img16.mode == "RGB" and img16.size == (W, H)
    a = np.asarray(img16)
    assert a[0, 0, 0] < 10 and a[-1, -1, 0] > 245


def test_draft_mode_decodes_big_jpeg_smaller(tmp_path):
    path = tmp_path / "big.jpg"
    gradient(2000, 1500).save(path, quality=85)
    img = open_image(path, draft=(256, 256))
    w, h = img.size
    assert w < 2000 and min(w, h) >= 256, img.size
    assert img.mode == "RGB"
    assert open_image(path).size == (2000, 1500)  # without draft: full size


def test_preview_array(tmp_path):
    img = gradient(2048, 512)
    prev = preview_array(img)
    assert prev.dtype == np.uint8 and prev.shape == (256, 1024, 3)
    small = preview_array(gradient())
    assert small.shape == (H, W, 3)


# ----------------------------------------------------------------------------- bad input
def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "empty" in reason_of(path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are not the pixels you are looking for\n" * 20)
    assert "not an image" in reason_of(path)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    noisy(256, 256).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    reason = reason_of(path)
    assert "truncated" in reason or "corrupt" in reason, reason


def test_truncation_does_not_leak_global_pillow_setting(tmp_path):
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_missing_file(tmp_path):
    assert "not found" in reason_of(tmp_path / "nope.png")


def test_directory(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    assert "folder" in reason_of(folder)


def _png_claiming(width: int, height: int) -> bytes:
    """A valid tiny PNG whose IHDR is rewritten to claim width x height (CRC fixed)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF  # chunk type + 13 bytes of IHDR data
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(30_000, 30_000))
    t0 = time.monotonic()
    reason = reason_of(path)
    # 900 MP of RGB would be 2.7 GB and take seconds to allocate and fill.
    assert time.monotonic() - t0 < 1.0
    assert "decompression bomb" in reason, reason


def test_pixel_limit_is_checked_from_the_header(tmp_path, monkeypatch):
    import engine.images

    path = tmp_path / "ok.png"
    gradient(100, 50).save(path)
    monkeypatch.setattr(engine.images, "MAX_PIXELS", 4000)
    reason = reason_of(path)
    assert "too large" in reason and "100×50" in reason and "decompression bomb" in reason


def test_is_image_path():
    assert is_image_path("a/B.JPEG") and is_image_path("x.heic")
    assert not is_image_path("notes.txt") and not is_image_path("noext")


def test_big_camera_photo_is_not_mistaken_for_a_bomb(tmp_path):
    """95 MP is above Pillow's 89 MP warning but under our limit: it must be decoded, not refused.

    The crafted file has no pixel data, so decoding then fails as truncated/corrupt.
    """
    path = tmp_path / "big.png"
    path.write_bytes(_png_claiming(10_000, 9_500))
    reason = reason_of(path)
    assert "bomb" not in reason and "too large" not in reason, reason
    assert "truncated" in reason or "corrupt" in reason, reason
