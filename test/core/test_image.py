"""core.image: conversion with cv_bridge semantics (8- and 16-bit encodings, row padding, zero copy,
buffer types, exact messages), compressed frames, resizing and layouts."""
import array
import io

import numpy as np
import pytest
from PIL import Image

from kairos_ros.core import image as image_module
from kairos_ros.core.image import (SUPPORTED_ENCODINGS, ImageError, Layout, decode_compressed, image_to_rgb,
                                   make_layout, resize_rgb, rgb_to_image_fields)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def padded(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    h = rows.shape[0]
    flat = rows.reshape(h, -1)
    out = np.concatenate([flat, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return out.tobytes(), out.shape[1]


def _rgb(h=5, w=7):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _pad_rows(rows: np.ndarray, step: int) -> bytes:
    """(H, row_bytes) uint8 -> bytes with each row padded to `step` bytes with 0xAB garbage."""
    h, row = rows.shape
    out = np.full((h, step), 0xAB, dtype=np.uint8)
    out[:, :row] = rows
    return out.tobytes()


# -- 8-bit encodings -----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding,make", [
    ("rgb8", lambda rgb: rgb),
    ("bgr8", lambda rgb: rgb[:, :, ::-1]),
    ("rgba8", lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])),
    ("bgra8", lambda rgb: np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 77, np.uint8)])),
])
@pytest.mark.parametrize("pad", [0, 3, 17])
def test_colour_8bit_with_row_padding(encoding, make, pad):
    rgb = _rgb(6, 5)
    raw = np.ascontiguousarray(make(rgb))
    h, w, c = raw.shape
    step = w * c + pad
    out = image_to_rgb(encoding, h, w, step, 0, _pad_rows(raw.reshape(h, w * c), step))
    assert out.dtype == np.uint8 and out.shape == (h, w, 3)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("pad", [0, 1, 6])
def test_mono8_replicated_to_grey_rgb(pad):
    grey = RNG.integers(0, 256, (4, 9), dtype=np.uint8)
    out = image_to_rgb("mono8", 4, 9, 9 + pad, 0, _pad_rows(grey, 9 + pad))
    assert out.shape == (4, 9, 3)
    for ch in range(3):
        np.testing.assert_array_equal(out[:, :, ch], grey)


# -- 16-bit encodings ----------------------------------------------------------------------------

def _scale16(v):
    """The documented rule, computed independently in float64: round(v * 255 / 65535)."""
    return np.floor(np.asarray(v, np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("bigendian", [0, 1])
def test_mono16_every_value_scales_with_rounding(bigendian):
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    dtype = ">u2" if bigendian else "<u2"
    data = values.astype(dtype).tobytes()
    out = image_to_rgb("mono16", 256, 256, 512, bigendian, data)
    expected = _scale16(values)
    np.testing.assert_array_equal(out[:, :, 0], expected)
    np.testing.assert_array_equal(out[:, :, 2], expected)
    # spot values: the ends, and the first rounding boundary (128 * 255 / 65535 = 0.498, 129 -> 0.502)
    assert out[0, 0, 0] == 0 and out[255, 255, 0] == 255
    assert out[0, 128, 0] == 0 and out[0, 129, 0] == 1
    assert out[128, 128, 0] == 128  # 32896 * 255 / 65535 = 128.0 exactly


def test_mono16_endianness_flag_is_honoured():
    v = np.array([[0x0100, 0xFF00]], dtype="<u2")  # little-endian bytes 00 01 / 00 FF
    little = image_to_rgb("mono16", 1, 2, 4, 0, v.tobytes())[0, :, 0]
    big = image_to_rgb("mono16", 1, 2, 4, 1, v.tobytes())[0, :, 0]  # same bytes read as 0x0001, 0x00FF
    np.testing.assert_array_equal(little, _scale16([0x0100, 0xFF00]))
    np.testing.assert_array_equal(big, _scale16([0x0001, 0x00FF]))
    assert not np.array_equal(little, big)


@pytest.mark.parametrize("bigendian", [0, 1])
def test_mono16_with_odd_row_padding(bigendian):
    values = RNG.integers(0, 65536, (3, 5)).astype(np.uint16)
    raw = values.astype(">u2" if bigendian else "<u2").view(np.uint8).reshape(3, 10)
    out = image_to_rgb("mono16", 3, 5, 13, bigendian, _pad_rows(raw, 13))
    np.testing.assert_array_equal(out[:, :, 1], _scale16(values))


@pytest.mark.parametrize("encoding,order", [("rgb16", [0, 1, 2]), ("bgr16", [2, 1, 0])])
def test_colour_16bit(encoding, order):
    values = RNG.integers(0, 65536, (2, 3, 3)).astype(np.uint16)
    out = image_to_rgb(encoding, 2, 3, 18, 1, values.astype(">u2").tobytes())
    np.testing.assert_array_equal(out, _scale16(values)[:, :, order])


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


# -- errors --------------------------------------------------------------------------------------

def test_unsupported_encoding_lists_supported():
    with pytest.raises(ImageError, match="unsupported encoding 'yuv422'") as info:
        image_to_rgb("yuv422", 2, 2, 4, 0, bytes(8))
    for enc in SUPPORTED_ENCODINGS:
        assert enc in str(info.value)


@pytest.mark.parametrize("h,w", [(0, 4), (4, 0), (-1, 4)])
def test_empty_image(h, w):
    with pytest.raises(ImageError, match="empty image"):
        image_to_rgb("rgb8", h, w, 12, 0, b"")


def test_step_too_small():
    with pytest.raises(ImageError, match="step 11 < width\\*channels\\*bytes 12"):
        image_to_rgb("rgb8", 2, 4, 11, 0, bytes(22))
    with pytest.raises(ImageError, match="step 7 < width\\*channels\\*bytes 8"):
        image_to_rgb("mono16", 2, 4, 7, 0, bytes(14))


@pytest.mark.parametrize("delta", [-1, 1, -12])
def test_data_length_must_equal_step_times_height(delta):
    with pytest.raises(ImageError, match="data length .* != step\\*height 24"):
        image_to_rgb("rgb8", 2, 4, 12, 0, bytes(24 + delta))


def test_rgb_to_image_fields_round_trip_and_errors():
    rgb = _rgb(4, 6)
    fields = rgb_to_image_fields(rgb)
    assert fields["encoding"] == "rgb8" and fields["step"] == 18 and (fields["height"], fields["width"]) == (4, 6)
    np.testing.assert_array_equal(image_to_rgb(**fields), rgb)
    with pytest.raises(ImageError, match="expected an \\(H, W, 3\\) array"):
        rgb_to_image_fields(np.zeros((4, 6), np.uint8))


# -- compressed ----------------------------------------------------------------------------------

def _encode(rgb, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["png", "rgb8; png compressed bgr8", ""])
def test_decode_png_is_lossless(fmt):
    rgb = _rgb(9, 11)
    np.testing.assert_array_equal(decode_compressed(fmt, _encode(rgb, "PNG")), rgb)


def test_decode_png_grey_and_rgba_become_rgb():
    grey = RNG.integers(0, 256, (5, 6), dtype=np.uint8)
    out = decode_compressed("png", _encode(grey, "PNG"))
    assert out.shape == (5, 6, 3) and np.array_equal(out[:, :, 1], grey)
    rgba = np.dstack([_rgb(5, 6), np.full((5, 6), 10, np.uint8)])
    out = decode_compressed("png", _encode(rgba, "PNG"))
    np.testing.assert_array_equal(out, rgba[:, :, :3])


@pytest.mark.parametrize("fmt", ["jpeg", "bgr8; jpeg compressed bgr8", "jpg"])
def test_decode_jpeg_is_close(fmt):
    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.dstack([xx * 5, yy * 7, (xx + yy) * 3]).astype(np.uint8)  # smooth: jpeg keeps it close
    out = decode_compressed(fmt, _encode(rgb, "JPEG", quality=95))
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 3.0


def test_decode_garbage_truncated_and_empty():
    with pytest.raises(ImageError, match="cannot decode compressed image"):
        decode_compressed("jpeg", b"definitely not an image" * 10)
    png = _encode(_rgb(40, 40), "PNG")
    with pytest.raises(ImageError, match="cannot decode"):
        decode_compressed("png", png[: len(png) // 2])
    for fmt in ("png", "jpeg"):
        with pytest.raises(ImageError, match="empty compressed image"):
            decode_compressed(fmt, b"")


def test_decode_unsupported_format():
    with pytest.raises(ImageError, match="unsupported compressed format '16UC1; compressedDepth png'"):
        decode_compressed("16UC1; compressedDepth png", _encode(_rgb(), "PNG"))


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

def test_resize_matches_pillow_bilinear():
    big = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(big).resize((32, 16), Image.BILINEAR)).astype(int)
    out = resize_rgb(big, 32, 16)
    assert out.shape == (16, 32, 3) and np.abs(out.astype(int) - ref).max() <= 1
    assert resize_rgb(big, 64, 48) is big


@pytest.mark.parametrize("shape,size", [((48, 64, 3), (32, 24)), ((30, 50, 3), (80, 40)), ((17, 23, 3), (16, 16))])
def test_resize_matches_pillow_bilinear_within_one_level(shape, size):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    rgb = np.dstack([xx * 4 % 256, yy * 6 % 256, (xx * yy) % 256]).astype(np.uint8)
    out = resize_rgb(rgb, *size)
    ref = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_resize_read_only_input_and_constant_image():
    rgb = np.full((20, 30, 3), 123, np.uint8)
    rgb.setflags(write=False)
    out = resize_rgb(rgb, 16, 16)
    assert out.shape == (16, 16, 3) and np.all(out == 123)


def test_resize_downscale_is_antialiased():
    # one bright column in every 4: point-sampling bilinear would read columns 1-2 (all 0); the
    # antialiased filter averages the period (255 / 4 = 63.75)
    row = np.tile(np.array([0, 0, 0, 255], np.uint8), 16)  # 64 columns
    img = np.repeat(np.repeat(row[None, :, None], 8, axis=0), 3, axis=2)
    out = resize_rgb(img, 16, 8)
    assert out.shape == (8, 16, 3)
    assert np.all(np.abs(out[:, 1:-1].astype(int) - 64) <= 8)


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

def test_single_layout():
    lay = make_layout("single", ["head"], 64, 48)
    assert (lay.width, lay.height) == (64, 48) and lay.tiles == ((0, 0, 64, 48),)
    img = _rgb(48, 64)
    np.testing.assert_array_equal(lay.compose([img]), img)


def test_side_by_side_layout_places_tiles_in_order():
    lay = make_layout("side_by_side", ["a", "b", "c"], 32, 16)
    assert (lay.width, lay.height) == (96, 16)
    imgs = [np.full((16, 32, 3), v, np.uint8) for v in (10, 20, 30)]
    out = lay.compose(imgs)
    assert out.shape == (16, 96, 3)
    for i, v in enumerate((10, 20, 30)):
        assert np.all(out[:, 32 * i:32 * (i + 1)] == v)
    assert lay.tile_size(2) == (32, 16)


def test_robotwin_layout():
    lay = make_layout("robotwin", ["head", "left", "right"], 160, 128)
    assert (lay.width, lay.height) == (320, 384)
    assert lay.tile_size(0) == (320, 256) and lay.tile_size(1) == (160, 128) and lay.tile_size(2) == (160, 128)
    head, left, right = (np.full((h, w, 3), v, np.uint8) for (w, h), v in
                         zip([lay.tile_size(i) for i in range(3)], (1, 2, 3)))
    out = lay.compose([head, left, right])
    assert np.all(out[:256] == 1) and np.all(out[256:, :160] == 2) and np.all(out[256:, 160:] == 3)


def test_robotwin_kairos_sizes_and_tile_sizes():
    rt = make_layout("robotwin", ["head", "left", "right"], 160, 128)
    assert rt.tile_sizes == [(320, 256), (160, 128), (160, 128)]
    assert rt.tiles[1][:2] == (0, 256) and rt.tiles[2][:2] == (160, 256)
    assert make_layout("single", ["head"], 320, 256).tile_sizes == [(320, 256)]


@pytest.mark.parametrize("name,cams,w,h", [("single", ["a"], 16, 16), ("side_by_side", ["a", "b"], 8, 16),
                                           ("robotwin", ["a", "b", "c"], 8, 16), ("side_by_side", ["a"] * 3, 16, 32)])
def test_layout_sizes_multiple_of_16(name, cams, w, h):
    lay = make_layout(name, cams, w, h)
    assert lay.width % 16 == 0 and lay.height % 16 == 0
    assert isinstance(lay, Layout)


@pytest.mark.parametrize("name,cams,w,h,msg", [
    ("single", ["a"], 20, 16, "must be multiples of 16"),
    ("side_by_side", ["a", "b", "c"], 8, 16, "composes 24x16"),
    ("robotwin", ["a", "b", "c"], 16, 8, "composes 32x24"),
    ("single", ["a", "b"], 16, 16, "'single' takes 1 camera, got 2"),
    ("side_by_side", [], 16, 16, "at least 1 camera"),
    ("robotwin", ["a", "b"], 16, 16, "'robotwin' takes 3 cameras"),
    ("mosaic", ["a"], 16, 16, "unknown layout 'mosaic'"),
    ("single", ["a"], 0, 16, "must be positive"),
    ("single", ["a"], 16, -16, "must be positive"),
])
def test_layout_errors(name, cams, w, h, msg):
    with pytest.raises(ValueError, match=msg):
        make_layout(name, cams, w, h)


def test_layout_size_error_names_the_sizes():
    with pytest.raises(ValueError, match="layout 'side_by_side' composes 300x128 \\(tiles 100x128\\)"):
        make_layout("side_by_side", ["a", "b", "c"], 100, 128)
    with pytest.raises(ValueError, match=r"got 2: \['a', 'b'\]"):
        make_layout("robotwin", ["a", "b"], 160, 128)
    with pytest.raises(ValueError, match="unknown layout 'grid' \\(one of single, side_by_side, robotwin\\)"):
        make_layout("grid", ["a"], 16, 16)


def test_compose_errors():
    lay = make_layout("side_by_side", ["a", "b"], 16, 16)
    with pytest.raises(ImageError, match="needs 2 images, got 1"):
        lay.compose([np.zeros((16, 16, 3), np.uint8)])
    with pytest.raises(ImageError, match="camera 'b' tile is 17x16, layout wants 16x16"):
        lay.compose([np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8)])


def test_compose_checks_channels_and_dtype():
    lay = make_layout("single", ["a"], 16, 16)
    with pytest.raises(ImageError, match="camera 'a' tile has shape \\(16, 16, 4\\)"):
        lay.compose([np.zeros((16, 16, 4), np.uint8)])
    with pytest.raises(ImageError, match="dtype float64"):
        lay.compose([np.zeros((16, 16, 3))])
    out = lay.compose([RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)])
    assert out.flags.writeable and out.shape == (16, 16, 3)
