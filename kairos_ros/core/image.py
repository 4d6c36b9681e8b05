"""Image conversion with cv_bridge semantics, resizing and the model's input layouts.

`image_to_rgb` takes the fields of a sensor_msgs/Image and returns what cv_bridge's
`toCvShare(msg, "rgb8")` / `imgmsg_to_cv2(msg, "rgb8")` would:
- row padding: `step` may exceed width * channels * bytes; the extra bytes of each row are ignored;
- size check as in cv_bridge's C++ `matFromImage`: step >= width * channels * bytes and
  len(data) == step * height exactly (the Python bridge only needs enough bytes; the stricter rule
  catches truncated and oversized buffers);
- `is_bigendian` is honoured for 16-bit data and ignored for 8-bit data, as cv_bridge does;
- 16 -> 8 bits: cv_bridge converts with `convertTo(dst, CV_8U, 255. / 65535.)`, i.e. round(v / 257)
  with saturation (v * 255 / 65535 never lands on .5, so the rounding mode does not matter);
- mono -> RGB replicates the grey value (cvtColor GRAY2RGB); alpha is dropped (RGBA2RGB).
rgb8 comes back as a zero-copy view of `data` (read-only for bytes; it aliases a mutable buffer);
other encodings come back as a new contiguous array. cv_bridge itself is never needed here.

Size limits (decompression bombs): a 17 KB 1-bit PNG can declare 12000x12000 pixels and decode to
hundreds of MB. Every conversion takes `max_pixels` and checks width * height from the message
fields or the compressed header (read lazily, before any pixel is decoded) against it, raising
ImageTooLargeError with the decoded size. 16-bit data goes to 8 bits through a 64 KB lookup table
indexed with the 16-bit words (never through int64/float64 copies of the frame).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

# encoding -> (channels, bytes per channel, source channel feeding R, G, B)
_ENCODINGS = {
    "rgb8": (3, 1, (0, 1, 2)), "bgr8": (3, 1, (2, 1, 0)),
    "rgba8": (4, 1, (0, 1, 2)), "bgra8": (4, 1, (2, 1, 0)),
    "mono8": (1, 1, (0, 0, 0)), "mono16": (1, 2, (0, 0, 0)),
    "rgb16": (3, 2, (0, 1, 2)), "bgr16": (3, 2, (2, 1, 0)),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)
_COMPRESSED_KINDS = ("jpeg", "jpg", "png", "rgb8", "bgr8", "mono8")
LAYOUTS = ("single", "side_by_side", "robotwin")
# round(v * 255 / 65535) for every 16-bit value (65535 = 255 * 257, so this is round(v / 257))
_SCALE16 = ((np.arange(65536, dtype=np.uint32) + 128) // 257).astype(np.uint8)

# Default largest frame (pixels): 4096 x 3072 = 12.6 MP takes 4K UHD (3840x2160), DCI 4K
# (4096x2160) and 12 MP sensors (4000x3000, 4032x3024); decoded to RGB that is 38 MB, and the
# conversion's intermediates stay within a few times that. Model tiles are a few hundred pixels.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 3072
# Upper bound of the parameter: 100 MP (300 MB as RGB, below Pillow's own 179 MP bomb error).
MAX_IMAGE_PIXELS_LIMIT = 100_000_000
# Bytes per pixel of Pillow's decoded modes (what the decoder allocates before RGB conversion).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "I;16": 2, "I;16B": 2, "I;16L": 2,
               "I;16N": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4, "RGBX": 4,
               "CMYK": 4, "I": 4, "F": 4}


class ImageError(ValueError):
    """An image that cannot be converted; the message names the problem."""


class ImageTooLargeError(ImageError):
    """An image whose declared size exceeds the pixel limit; refused before it is decoded."""


def check_image_size(width: int, height: int, max_pixels: int | None, what: str,
                     bytes_per_pixel: int = 3) -> None:
    """Raise ImageTooLargeError when width * height > max_pixels (None: no limit). `what`
    describes the image; `bytes_per_pixel` (decoded form, plus 3 for RGB) sizes the message."""
    if max_pixels is None:
        return
    pixels = int(width) * int(height)
    if pixels > max_pixels:
        decoded = pixels * int(bytes_per_pixel)
        raise ImageTooLargeError(f"{what} is {int(width)}x{int(height)} = {pixels} pixels (~{decoded / 1e6:.0f} MB "
                                 f"decoded) > max_image_pixels {max_pixels}: refused before decoding")


def check_raw_size(encoding: str, height: int, width: int, max_pixels: int | None) -> None:
    """sensor_msgs/Image size check alone (before any conversion, cv_bridge's included)."""
    channels, depth, _ = _ENCODINGS.get(encoding, (4, 2, None))
    check_image_size(width, height, max_pixels, f"{encoding} image", channels * depth + 3)


def _as_uint8(data) -> np.ndarray:
    """The message's byte buffer as a flat uint8 array, without copying when it has a buffer."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a plain sequence of ints
        try:
            return np.array(data, dtype=np.uint8).reshape(-1)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ImageError(f"image data of type {type(data).__name__} is not a byte buffer: {exc}") from exc


def _pick_rgb(pix: np.ndarray, order: tuple) -> np.ndarray:
    """(H, W, C) -> new contiguous (H, W, 3); three plane copies beat fancy indexing ~10x."""
    out = np.empty(pix.shape[:2] + (3,), dtype=np.uint8)
    for dst, src in enumerate(order):
        out[:, :, dst] = pix[:, :, src]
    return out


def image_to_rgb(encoding: str, height: int, width: int, step: int, is_bigendian, data,
                 max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB. Raises ImageError naming the problem,
    ImageTooLargeError when width * height > max_pixels (None: no limit), checked first."""
    if encoding not in _ENCODINGS:
        raise ImageError(f"unsupported encoding '{encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image {width}x{height}")
    check_raw_size(encoding, height, width, max_pixels)
    channels, depth, order = _ENCODINGS[encoding]
    row = width * channels * depth
    if step < row:
        raise ImageError(f"step {step} < width*channels*bytes {row} for {width}x{height} {encoding}")
    buf = _as_uint8(data)
    if buf.size != step * height:
        raise ImageError(f"data length {buf.size} != step*height {step * height} "
                         f"({width}x{height} {encoding}, step {step})")
    rows = buf.reshape(height, step)[:, :row]  # (H, row) view without the padding
    if depth == 2:
        dtype = np.dtype(">u2" if is_bigendian else "<u2")
        try:
            words = rows.view(dtype)
        except ValueError:  # odd padding: rows do not start on a 2-byte boundary
            words = np.ascontiguousarray(rows).view(dtype)
        pix = _SCALE16[words].reshape(height, width, channels)
    else:
        pix = rows.reshape(height, width, channels)  # still a view
        if encoding == "rgb8":
            return pix
    if channels == 3 and order == (0, 1, 2):
        return pix  # rgb16: _SCALE16 already made a new array
    return _pick_rgb(pix, order)


def rgb_to_image_fields(rgb: np.ndarray) -> dict:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image fields (rgb8, no padding) for publishing."""
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"expected an (H, W, 3) array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ImageError(f"expected uint8 RGB, got dtype {arr.dtype}")
    h, w = arr.shape[:2]
    return {"encoding": "rgb8", "height": h, "width": w, "step": w * 3, "is_bigendian": 0,
            "data": arr.tobytes()}


def decode_compressed(format: str, data, max_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS  # noqa: A002
                      ) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png, as image_transport writes them) -> RGB uint8.

    `format` is e.g. "jpeg", "png" or "rgb8; jpeg compressed bgr8": the word after the last ';'
    names the codec; the data itself decides (Pillow sniffs it, JPEG and PNG only). 16-bit grey
    PNGs scale to 8 bits like mono16 (round(v / 257)); Pillow alone would clip them at 255.
    The size in the header is checked against `max_pixels` before anything is decoded
    (ImageTooLargeError); Pillow's own bomb guard (Image.MAX_IMAGE_PIXELS) stays in force too
    and counts as too large as well. None: Pillow's guard alone.
    """
    kind = format.split(";")[-1].strip().split(" ")[0].lower() if format else ""
    if kind and kind not in _COMPRESSED_KINDS:
        raise ImageError(f"unsupported compressed format '{format}' (jpeg or png)")
    if data is None or len(data) == 0:
        raise ImageError("empty compressed image")
    try:
        with Image.open(io.BytesIO(bytes(data)), formats=("JPEG", "PNG")) as img:
            # Only the header has been read so far: size and mode, no pixels.
            width, height = img.size
            check_image_size(width, height, max_pixels, f"{img.format or 'compressed'} {img.mode} image",
                             _MODE_BYTES.get(img.mode, 4) + 3)
            if img.mode.startswith("I"):  # 16-bit grey PNG ("I;16", "I;16B") or 32-bit "I"
                words = np.asarray(img)  # uint16 (either byte order) or int32: no wider copy
                if words.dtype.itemsize > 2:
                    words = np.clip(words, 0, 65535).astype(np.uint16)
                grey = _SCALE16[words]  # indexing with 16-bit words allocates only the uint8 result
                return np.repeat(grey[:, :, None], 3, axis=2)
            return np.asarray(img.convert("RGB"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard: an error beyond 2 * Image.MAX_IMAGE_PIXELS, or its warning where
        # warnings are turned into errors.
        raise ImageTooLargeError(f"compressed image ({format or 'no format'}) refused before decoding: {exc}") from exc
    except ImageTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot decode compressed image ({format or 'no format'}): {exc}") from exc


_TORCH = None


def _torch_functional():
    try:
        import torch
        import torch.nn.functional as functional
    except ImportError:  # torch is a project dependency, but conversion must not need it
        return False
    return torch, functional


def warm_up_resize() -> None:
    """Import and run the resize kernel once, so the first real frame is not seconds late."""
    resize_rgb(np.zeros((32, 32, 3), dtype=np.uint8), 16, 16)


def resize_rgb(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased bilinear resize to (height, width, 3) uint8: Pillow's BILINEAR filter.

    torch's uint8 antialiased bilinear kernel computes the same filter about 3x faster than
    Pillow (within one grey level), so it is used when importable; Pillow is the fallback. The
    same size returns `rgb` itself (no copy).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"resize target {width}x{height} must be positive")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"resize expects (H, W, 3) uint8 RGB, got shape {rgb.shape} dtype {rgb.dtype}")
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    global _TORCH
    if _TORCH is None:
        _TORCH = _torch_functional()
    if _TORCH:
        torch, functional = _TORCH
        arr = np.ascontiguousarray(rgb)
        if not arr.flags.writeable:  # torch warns on read-only buffers (message data): copy once
            arr = arr.copy()
        chw = torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1, 3, H, W) channels-last view
        out = functional.interpolate(chw, size=(height, width), mode="bilinear", antialias=True,
                                     align_corners=False)
        return out[0].permute(1, 2, 0).contiguous().numpy()

    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.BILINEAR))


@dataclass(frozen=True)
class Layout:
    """Where each camera's tile goes in the composed model input (sizes in pixels)."""

    name: str
    camera_names: tuple
    tiles: tuple  # per camera (x, y, width, height)
    width: int
    height: int

    def tile_size(self, i: int) -> tuple[int, int]:
        """(width, height) that camera i must be resized to."""
        return self.tiles[i][2], self.tiles[i][3]

    @property
    def tile_sizes(self) -> list[tuple[int, int]]:
        return [(w, h) for _, _, w, h in self.tiles]

    def compose(self, images) -> np.ndarray:
        """Tiles (already resized, in camera order) -> (height, width, 3) uint8."""
        if len(images) != len(self.tiles):
            raise ImageError(f"layout '{self.name}' needs {len(self.tiles)} images, got {len(images)}")
        out = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        for img, (x, y, w, h), name in zip(images, self.tiles, self.camera_names):
            if img.shape[:2] != (h, w):
                raise ImageError(f"camera '{name}' tile is {img.shape[1]}x{img.shape[0]}, layout wants {w}x{h}")
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ImageError(f"camera '{name}' tile has shape {img.shape} dtype {img.dtype}, "
                                 "layout wants (H, W, 3) uint8")
            out[y:y + h, x:x + w] = img
        return out


def make_layout(name: str, camera_names: list[str], tile_width: int, tile_height: int) -> Layout:
    """single: 1 camera; side_by_side: N cameras in a row; robotwin: head (2x tile) on top of two
    wrist tiles. The composed size must be a multiple of 16 both ways (the VAE's patching)."""
    n = len(camera_names)
    if tile_width <= 0 or tile_height <= 0:
        raise ValueError(f"tile size {tile_width}x{tile_height} must be positive")
    if name == "single":
        if n != 1:
            raise ValueError(f"layout 'single' takes 1 camera, got {n}: {list(camera_names)}")
        tiles = ((0, 0, tile_width, tile_height),)
        width, height = tile_width, tile_height
    elif name == "side_by_side":
        if n < 1:
            raise ValueError("layout 'side_by_side' needs at least 1 camera")
        tiles = tuple((i * tile_width, 0, tile_width, tile_height) for i in range(n))
        width, height = n * tile_width, tile_height
    elif name == "robotwin":
        if n != 3:
            raise ValueError(f"layout 'robotwin' takes 3 cameras (head, left wrist, right wrist), "
                             f"got {n}: {list(camera_names)}")
        tiles = ((0, 0, 2 * tile_width, 2 * tile_height), (0, 2 * tile_height, tile_width, tile_height),
                 (tile_width, 2 * tile_height, tile_width, tile_height))
        width, height = 2 * tile_width, 3 * tile_height
    else:
        raise ValueError(f"unknown layout '{name}' (one of {', '.join(LAYOUTS)})")
    if width % 16 or height % 16:
        raise ValueError(f"layout '{name}' composes {width}x{height} (tiles {tile_width}x{tile_height}): "
                         "width and height must be multiples of 16")
    return Layout(name, tuple(camera_names), tiles, width, height)


# -- region of interest -------------------------------------------------------------------------
@dataclass(frozen=True)
class Crop:
    """A region of a camera frame as fractions of its width and height (resolution-independent,
    so one setting serves a 320x240 simulator and a 1280x960 camera): left < right, top < bottom,
    all in [0, 1]."""

    left: float
    top: float
    right: float
    bottom: float

    MIN_FRACTION = 0.01  # narrower regions are a typo, not a crop

    def __post_init__(self):
        values = (self.left, self.top, self.right, self.bottom)
        if not all(isinstance(v, (int, float)) and np.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"crop {values}: every value must be a fraction in [0, 1]")
        if self.right - self.left < self.MIN_FRACTION or self.bottom - self.top < self.MIN_FRACTION:
            raise ValueError(f"crop {values}: needs left < right and top < bottom, each at least "
                             f"{self.MIN_FRACTION} of the frame apart")

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the region in a width x height frame: outward-rounded, at least one pixel."""
        x0, y0 = int(np.floor(self.left * width)), int(np.floor(self.top * height))
        x1, y1 = int(np.ceil(self.right * width)), int(np.ceil(self.bottom * height))
        x0, y0 = min(x0, width - 1), min(y0, height - 1)
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The region of an (H, W, C) frame (a view, no copy)."""
        x0, y0, x1, y1 = self.pixels(rgb.shape[1], rgb.shape[0])
        return rgb[y0:y1, x0:x1]

    def text(self) -> str:
        return f"{self.left:g} {self.top:g} {self.right:g} {self.bottom:g}"


def parse_crop(text: str) -> Crop | None:
    """'left top right bottom' (fractions, spaces or commas) -> Crop; '' or 'none' -> None (the
    whole frame). ValueError naming the text for anything else."""
    s = str(text).strip()
    if s.lower() in ("", "none", "full"):
        return None
    parts = s.replace(",", " ").split()
    if len(parts) != 4:
        raise ValueError(f"crop '{text}': expected 4 fractions 'left top right bottom', got {len(parts)} value(s)")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"crop '{text}': not numbers") from None
    try:
        return Crop(*values)
    except ValueError as exc:
        raise ValueError(f"crop '{text}': {exc}") from None


def parse_crops(texts, cameras) -> list:
    """One Crop or None per camera from the camera_crops parameter ([] = no crops)."""
    texts = list(texts or [])
    if not texts:
        return [None] * len(cameras)
    if len(texts) != len(cameras):
        raise ValueError(f"camera_crops has {len(texts)} entries but there are {len(cameras)} cameras "
                         f"({list(cameras)}): give one per camera ('' for the whole frame)")
    return [parse_crop(t) for t in texts]
