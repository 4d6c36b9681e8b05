"""Image conversion with cv_bridge semantics, compressed frames, resizing and layouts."""
import array
import io

import numpy as np
import pytest
from PIL import Image

from kairos_ros.core import image as image_module
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


# -- zero copy, buffers and exact messages -------------------------------------------------------

def test_rgb8_is_a_zero_copy_view_even_with_padding():
    data, step = padded(RGB, 5)
    out = image_to_rgb("rgb8", 5, 7, step, 0, data)
    assert np.shares_memory(out, np.frombuffer(data, np.uint8)) and not out.flags.writeable
    buf = bytearray(RGB.tobytes())
    view = image_to_rgb("rgb8", 5, 7, 21, 0, buf)
    buf[0] = (int(RGB[0, 0, 0]) + 1) % 256  # a mutable buffer is aliased, as documented
    assert view[0, 0, 0] == buf[0]


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "bgr16"])
def test_other_encodings_give_new_contiguous_arrays(encoding):
    channels = {"bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "mono16": 1, "rgb16": 3, "bgr16": 3}[encoding]
    depth = 2 if encoding.endswith("16") else 1
    data = bytearray(RNG.integers(0, 256, 4 * 6 * channels * depth, dtype=np.uint8).tobytes())
    out = image_to_rgb(encoding, 4, 6, 6 * channels * depth, 0, data)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert not np.shares_memory(out, np.frombuffer(data, np.uint8))


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: array.array("B", b), list,
                                  lambda b: np.frombuffer(b, np.uint8).reshape(5, 21)])
def test_every_buffer_type_of_a_message_is_accepted(wrap):
    out = image_to_rgb("rgb8", 5, 7, 21, 0, wrap(RGB.tobytes()))
    assert np.array_equal(out, RGB)


def test_non_byte_sequence_is_an_image_error():
    with pytest.raises(ImageError, match="not a byte buffer"):
        image_to_rgb("mono8", 1, 2, 2, 0, [1, 300])


def test_messages_match_the_documented_wording():
    with pytest.raises(ImageError, match=r"^step 1919 < width\*channels\*bytes 1920"):
        image_to_rgb("rgb8", 480, 640, 1919, 0, bytes(1919 * 480))
    with pytest.raises(ImageError, match=r"^data length 100 != step\*height 921600"):
        image_to_rgb("rgb8", 480, 640, 1920, 0, bytes(100))
    with pytest.raises(ImageError, match=r"^unsupported encoding '8UC3'"):
        image_to_rgb("8UC3", 2, 2, 6, 0, bytes(12))
    with pytest.raises(ImageError, match=r"^empty image 0x0"):
        image_to_rgb("mono8", 0, 0, 0, 0, b"")


def test_bigendian_flag_is_ignored_for_8_bit():
    assert np.array_equal(image_to_rgb("bgr8", 5, 7, 21, 1, RGB.tobytes()), RGB[:, :, ::-1])


@pytest.mark.parametrize("big", [0, 1])
def test_bgr16_with_odd_padding_scales_like_cv_bridge(big):
    values = RNG.integers(0, 65536, (3, 4, 3)).astype(np.uint16)
    raw = values.astype(">u2" if big else "<u2").view(np.uint8).reshape(3, 24)
    data, step = padded(raw, 3)  # step 27: rows start on odd byte offsets
    out = image_to_rgb("bgr16", 3, 4, step, big, data)
    expected = np.floor(values[:, :, ::-1] * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    assert np.array_equal(out, expected)


def test_rgb8_with_a_packed_step_is_converted_without_a_copy():
    """What made rgb8 cheap (its speed is kairos-bench pipeline's figure, not a test's): a view."""
    frame = RNG.integers(0, 256, 640 * 480 * 3, dtype=np.uint8).tobytes()
    out = image_to_rgb("rgb8", 480, 640, 1920, 0, frame)
    assert np.shares_memory(out, np.frombuffer(frame, np.uint8)) and out.shape == (480, 640, 3)


# -- compressed ----------------------------------------------------------------------------------

def test_16_bit_png_scales_instead_of_clipping():
    values = np.array([[0, 128, 129, 32896, 65535]], np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, format="PNG")
    out = decode_compressed("mono16; png compressed", buf.getvalue())
    assert out.shape == (1, 5, 3) and out[0, :, 1].tolist() == [0, 0, 1, 128, 255]


def test_only_jpeg_and_png_are_decoded():
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, format="BMP")
    with pytest.raises(ImageError, match="cannot decode compressed image \\(jpeg\\)"):
        decode_compressed("jpeg", buf.getvalue())
    with pytest.raises(ImageError, match="unsupported compressed format 'tiff'"):
        decode_compressed("tiff", buf.getvalue())


# -- resize --------------------------------------------------------------------------------------

def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match="resize target 0x16 must be positive"):
        resize_rgb(RGB, 0, 16)
    with pytest.raises(ImageError, match="uint8 RGB, got shape \\(5, 7\\)"):
        resize_rgb(RGB[:, :, 0], 4, 4)
    with pytest.raises(ImageError, match="dtype float32"):
        resize_rgb(RGB.astype(np.float32), 4, 4)


def test_resize_of_a_padded_read_only_view_and_pillow_fallback(monkeypatch):
    big = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    data, step = padded(big, 7)
    view = image_to_rgb("rgb8", 48, 64, step, 0, data)
    ref = np.asarray(Image.fromarray(big).resize((40, 24), Image.BILINEAR)).astype(int)
    assert np.abs(resize_rgb(view, 40, 24).astype(int) - ref).max() <= 1
    monkeypatch.setattr(image_module, "_TORCH", False)  # no torch: Pillow itself
    assert np.array_equal(resize_rgb(view, 40, 24), ref)


def test_two_frames_convert_and_resize():
    """The benchmark's workload (kairos-bench pipeline times it) gives frames of the tile's size."""
    frames = [RNG.integers(0, 256, 640 * 480 * 3, dtype=np.uint8).tobytes() for _ in range(2)]
    image_module.warm_up_resize()
    for f in frames:
        out = resize_rgb(image_to_rgb("bgr8", 480, 640, 1920, 0, f), 320, 256)
        assert out.shape == (256, 320, 3) and out.dtype == np.uint8


# -- layouts -------------------------------------------------------------------------------------

def test_robotwin_kairos_sizes_and_tile_sizes():
    rt = make_layout("robotwin", ["head", "left", "right"], 160, 128)
    assert rt.tile_sizes == [(320, 256), (160, 128), (160, 128)]
    assert rt.tiles[1][:2] == (0, 256) and rt.tiles[2][:2] == (160, 256)
    assert make_layout("single", ["head"], 320, 256).tile_sizes == [(320, 256)]


def test_layout_size_error_names_the_sizes():
    with pytest.raises(ValueError, match="layout 'side_by_side' composes 300x128 \\(tiles 100x128\\)"):
        make_layout("side_by_side", ["a", "b", "c"], 100, 128)
    with pytest.raises(ValueError, match=r"got 2: \['a', 'b'\]"):
        make_layout("robotwin", ["a", "b"], 160, 128)
    with pytest.raises(ValueError, match="unknown layout 'grid' \\(one of single, side_by_side, robotwin\\)"):
        make_layout("grid", ["a"], 16, 16)


def test_compose_checks_channels_and_dtype():
    lay = make_layout("single", ["a"], 16, 16)
    with pytest.raises(ImageError, match="camera 'a' tile has shape \\(16, 16, 4\\)"):
        lay.compose([np.zeros((16, 16, 4), np.uint8)])
    with pytest.raises(ImageError, match="dtype float64"):
        lay.compose([np.zeros((16, 16, 3))])
    out = lay.compose([RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)])
    assert out.flags.writeable and out.shape == (16, 16, 3)
