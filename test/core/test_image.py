"""Image conversion with cv_bridge semantics, compressed frames, resizing and layouts."""
import io

import numpy as np
import pytest
from PIL import Image

from kairos_ros.core.image import (ImageError, decode_compressed, image_to_rgb, make_layout, resize_rgb,
                                   rgb_to_image_fields)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def padded(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    h = rows.shape[0]
    flat = rows.reshape(h, -1)
    out = np.concatenate([flat, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return out.tobytes(), out.shape[1]


@pytest.mark.parametrize("encoding,make", [
    ("rgb8", lambda x: x), ("bgr8", lambda x: x[:, :, ::-1]),
    ("rgba8", lambda x: np.concatenate([x, np.full(x.shape[:2] + (1,), 9, np.uint8)], 2)),
    ("bgra8", lambda x: np.concatenate([x[:, :, ::-1], np.full(x.shape[:2] + (1,), 9, np.uint8)], 2)),
])
@pytest.mark.parametrize("pad", [0, 3])
def test_color_encodings_with_row_padding(encoding, make, pad):
    data, step = padded(np.ascontiguousarray(make(RGB)), pad)
    out = image_to_rgb(encoding, 5, 7, step, 0, data)
    assert out.dtype == np.uint8 and np.array_equal(out, RGB)


def test_mono8():
    gray = RGB[:, :, 0].copy()
    out = image_to_rgb("mono8", 5, 7, 7, 0, gray.tobytes())
    assert np.array_equal(out, np.repeat(gray[:, :, None], 3, 2))


@pytest.mark.parametrize("big", [0, 1])
def test_mono16_scaling_and_endianness(big):
    values = np.array([[0, 257, 65535, 32768, 128]], dtype=np.uint16)
    data = values.astype(">u2" if big else "<u2").tobytes()
    out = image_to_rgb("mono16", 1, 5, 10, big, data)
    expected = np.round(values.astype(float) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(out[:, :, 0], expected) and np.array_equal(out[:, :, 2], expected)


@pytest.mark.parametrize("args,match", [
    (("yuv422", 5, 7, 14, 0, bytes(70)), "unsupported encoding 'yuv422'"),
    (("rgb8", 5, 7, 20, 0, bytes(100)), "step 20 < width"),
    (("rgb8", 5, 7, 21, 0, bytes(104)), "data length 104 != step\\*height 105"),
    (("rgb8", 0, 0, 0, 0, b""), "empty image 0x0"),
])
def test_errors_name_the_problem(args, match):
    with pytest.raises(ImageError, match=match):
        image_to_rgb(*args)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed(fmt):
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, format="PNG" if fmt == "png" else "JPEG", quality=95)
    out = decode_compressed(f"rgb8; {fmt} compressed bgr8", buf.getvalue())
    assert out.shape == RGB.shape
    if fmt == "png":
        assert np.array_equal(out, RGB)
    with pytest.raises(ImageError):
        decode_compressed(fmt, b"not an image")
    with pytest.raises(ImageError, match="empty"):
        decode_compressed(fmt, b"")


def test_resize_matches_pillow_bilinear():
    big = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(big).resize((32, 16), Image.BILINEAR)).astype(int)
    out = resize_rgb(big, 32, 16)
    assert out.shape == (16, 32, 3) and np.abs(out.astype(int) - ref).max() <= 1
    assert resize_rgb(big, 64, 48) is big


def test_round_trip_fields():
    f = rgb_to_image_fields(RGB)
    assert f["encoding"] == "rgb8" and f["step"] == 21
    assert np.array_equal(image_to_rgb("rgb8", f["height"], f["width"], f["step"], 0, f["data"]), RGB)


def test_layouts():
    rt = make_layout("robotwin", ["head", "l", "r"], 160, 128)
    assert (rt.width, rt.height) == (320, 384) and rt.tile_size(0) == (320, 256) and rt.tile_size(2) == (160, 128)
    tiles = [np.full((256, 320, 3), 1, np.uint8), np.full((128, 160, 3), 2, np.uint8), np.full((128, 160, 3), 3, np.uint8)]
    img = rt.compose(tiles)
    assert img[0, 0, 0] == 1 and img[300, 10, 0] == 2 and img[300, 200, 0] == 3
    sbs = make_layout("side_by_side", ["a", "b"], 224, 224)
    assert (sbs.width, sbs.height) == (448, 224)
    with pytest.raises(ValueError, match="multiples of 16"):
        make_layout("single", ["a"], 100, 64)
    with pytest.raises(ValueError, match="takes 3 cameras"):
        make_layout("robotwin", ["a"], 160, 128)
    with pytest.raises(ValueError, match="unknown layout 'grid'"):
        make_layout("grid", ["a"], 16, 16)
    with pytest.raises(ImageError, match="layout wants"):
        rt.compose([tiles[0], tiles[0], tiles[2]])
