"""Unit tests for kairos_ros.core.image: cv_bridge-semantics conversion, decoding, resizing, layouts."""
import io

import numpy as np
import pytest
from PIL import Image

from kairos_ros.core.image import (SUPPORTED_ENCODINGS, ImageError, Layout, decode_compressed, image_to_rgb,
                                   make_layout, resize_rgb, rgb_to_image_fields)

RNG = np.random.default_rng(1234)


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


def test_numpy_array_data_is_accepted():
    rgb = _rgb(3, 4)
    out = image_to_rgb("rgb8", 3, 4, 12, 0, rgb.reshape(-1).copy())
    np.testing.assert_array_equal(out, rgb)


def test_result_does_not_alias_a_reordered_source():
    raw = _rgb(3, 3)
    data = bytearray(raw.tobytes())
    out = image_to_rgb("bgr8", 3, 3, 9, 0, data)
    data[:] = bytes(len(data))  # mutate the source buffer after conversion
    np.testing.assert_array_equal(out, raw[:, :, ::-1])


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
    with pytest.raises(ImageError, match="empty compressed image"):
        decode_compressed("png", b"")


def test_decode_unsupported_format():
    with pytest.raises(ImageError, match="unsupported compressed format '16UC1; compressedDepth png'"):
        decode_compressed("16UC1; compressedDepth png", _encode(_rgb(), "PNG"))


# -- resize --------------------------------------------------------------------------------------

def test_resize_same_size_returns_input():
    rgb = _rgb(8, 8)
    assert resize_rgb(rgb, 8, 8) is rgb


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


def test_compose_errors():
    lay = make_layout("side_by_side", ["a", "b"], 16, 16)
    with pytest.raises(ImageError, match="needs 2 images, got 1"):
        lay.compose([np.zeros((16, 16, 3), np.uint8)])
    with pytest.raises(ImageError, match="camera 'b' tile is 17x16, layout wants 16x16"):
        lay.compose([np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8)])
