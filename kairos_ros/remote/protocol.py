"""The remote-inference wire format (docs/remote-protocol.md): msgpack maps with typed arrays.

Pure functions, no I/O, so any transport (the websocket server here, another transport later)
decodes and encodes exactly the same messages. Everything from the network is hostile until
checked (docs/architecture.md, convention 9): the message size is checked before it is unpacked,
msgpack runs with per-container limits and without extension types (so nothing is ever unpickled or
turned into an object), a typed array names one of three plain dtypes and a bounded shape whose
byte count must equal its data's before numpy sees it, and every number and string is bounded.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import msgpack
import numpy as np

from kairos_ros.core.text import InstructionError, check_instruction
from kairos_ros.core.types import JointStateData, ObservationData

PROTOCOL = 1
DTYPES = {"uint8": np.dtype("u1"), "float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
MAX_ID = 2**53  # request ids: integers in [0, 2**53) (exact in a double, for clients in any language)
MAX_NAME = 256  # characters in a joint, slot, camera or client name
MAX_SIDE = 4096  # pixels per image side
MAX_JOINTS = 512
MAX_OBSERVATIONS = 64  # observations in one infer message
MAX_HORIZON = 1024
MAX_FRAMES = 256
ENCODINGS = ("raw", "jpeg")

# Error codes (the `code` of an error message; docs/remote-protocol.md lists what each means).
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
BAD_ARRAY = "bad_array"
BAD_OBSERVATION = "bad_observation"
PROTOCOL_VERSION = "protocol_version"
MISMATCH = "mismatch"
NOT_READY = "not_ready"
SUPERSEDED = "superseded"
BACKEND_ERROR = "backend_error"
BUSY = "busy"
INTERNAL = "internal"
ERROR_CODES = (BAD_MESSAGE, UNKNOWN_TYPE, BAD_ARRAY, BAD_OBSERVATION, PROTOCOL_VERSION, MISMATCH, NOT_READY,
               SUPERSEDED, BACKEND_ERROR, BUSY, INTERNAL)

# Websocket close codes the server uses (4000-4999 are the application's).
CLOSE_IDLE = 4000  # no message for idle_timeout seconds
CLOSE_NO_HELLO = 4001  # no hello within hello_timeout seconds
CLOSE_PROTOCOL = 4002  # a bad hello, or too many bad messages in a row
CLOSE_BUSY = 4003  # max_sessions reached
CLOSE_SHUTDOWN = 1001  # the server is stopping


class ProtocolError(ValueError):
    """A message refused; `code` is one of ERROR_CODES and the text says why (never a traceback)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _no_ext(code, _data):
    raise ProtocolError(BAD_MESSAGE, f"msgpack extension type {code} is not accepted")


def unpack(data, max_bytes: int) -> dict:
    """One message: a msgpack map with a string `type`. Sizes are checked before unpacking."""
    if isinstance(data, str):
        raise ProtocolError(BAD_MESSAGE, "text frames are not accepted: send msgpack in a binary frame")
    if len(data) > max_bytes:
        raise ProtocolError(BAD_MESSAGE, f"message of {len(data)} bytes exceeds {max_bytes}")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, ext_hook=_no_ext, timestamp=0,
                              max_str_len=max_bytes, max_bin_len=max_bytes,
                              max_array_len=100_000, max_map_len=64)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types (ExtraData, FormatError, ValueError, ...)
        raise ProtocolError(BAD_MESSAGE, f"malformed msgpack ({type(exc).__name__})") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError(BAD_MESSAGE, "a message is a msgpack map with a string 'type'")
    return msg


def pack(msg: dict) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


# -- typed fields --------------------------------------------------------------------------------
def get_int(msg: dict, key: str, lo: int, hi: int, default=None) -> int:
    value = msg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(BAD_MESSAGE, f"'{key}' must be an integer in [{lo}, {hi}]")
    return value


def get_float(msg: dict, key: str, lo: float, hi: float, default=None) -> float:
    value = msg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ProtocolError(BAD_MESSAGE, f"'{key}' must be a finite number in [{lo}, {hi}]")
    return float(value)


def get_str(msg: dict, key: str, max_len: int = MAX_NAME, default=None) -> str:
    value = msg.get(key, default)
    if not isinstance(value, str) or len(value) > max_len:
        raise ProtocolError(BAD_MESSAGE, f"'{key}' must be a string of at most {max_len} characters")
    return value


def get_bool(msg: dict, key: str, default: bool = False) -> bool:
    value = msg.get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError(BAD_MESSAGE, f"'{key}' must be true or false")
    return value


def get_names(msg: dict, key: str, max_count: int = MAX_JOINTS) -> list[str]:
    value = msg.get(key)
    if not isinstance(value, list) or len(value) > max_count or \
            not all(isinstance(v, str) and len(v) <= MAX_NAME for v in value):
        raise ProtocolError(BAD_MESSAGE, f"'{key}' must be a list of at most {max_count} names")
    return value


def get_instruction(msg: dict, key: str = "instruction") -> str:
    text = get_str(msg, key, 2000)
    try:
        return check_instruction(text)
    except InstructionError as exc:
        raise ProtocolError(BAD_MESSAGE, f"'{key}' refused: {exc}") from None


def array_to_wire(a: np.ndarray) -> dict:
    a = np.asarray(a)
    for name, dt in DTYPES.items():
        if a.dtype == dt or (a.dtype.kind == dt.kind and a.dtype.itemsize == dt.itemsize):
            return {"dtype": name, "shape": list(a.shape), "data": np.ascontiguousarray(a, dtype=dt).tobytes()}
    raise TypeError(f"dtype {a.dtype} cannot be sent (one of {list(DTYPES)})")


def array_from_wire(obj, key: str, dtypes: tuple, shape: tuple) -> np.ndarray:
    """A read-only numpy view of a typed array. `shape` holds an int (exact), a (lo, hi) range or
    None (any size up to MAX_SIDE) per dimension; the byte count is checked before numpy sees it."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise ProtocolError(BAD_ARRAY, f"'{key}' must be a typed array {{dtype, shape, data}}")
    name, dims, data = obj["dtype"], obj["shape"], obj["data"]
    if name not in dtypes:
        raise ProtocolError(BAD_ARRAY, f"'{key}': dtype {str(name)[:32]!r} refused (accepted: {list(dtypes)})")
    if not isinstance(dims, list) or len(dims) != len(shape) or \
            not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise ProtocolError(BAD_ARRAY, f"'{key}': shape must be a list of {len(shape)} integers")
    for i, (d, want) in enumerate(zip(dims, shape)):
        lo, hi = (want, want) if isinstance(want, int) else (want or (0, MAX_SIDE))
        if not lo <= d <= hi:
            raise ProtocolError(BAD_ARRAY, f"'{key}': dimension {i} is {d}, expected {lo}..{hi}")
    dt = DTYPES[name]
    if not isinstance(data, bytes) or len(data) != math.prod(dims) * dt.itemsize:
        raise ProtocolError(BAD_ARRAY, f"'{key}': data must be {math.prod(dims) * dt.itemsize} bytes for "
                                       f"{name} {dims}")
    return np.frombuffer(data, dtype=dt).reshape(dims)


def finite(a: np.ndarray, key: str) -> np.ndarray:
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ProtocolError(BAD_ARRAY, f"'{key}' holds non-finite values")
    return a


# -- observations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameRule:
    """What the server accepts as a frame: the model's size (0: any up to MAX_SIDE) and the max bytes."""

    width: int = 0
    height: int = 0
    max_bytes: int = 3 * MAX_SIDE * MAX_SIDE


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(out, "JPEG", quality=int(quality))
    return out.getvalue()


def decode_jpeg(data: bytes, width: int, height: int) -> np.ndarray:
    """The header's size is checked against the declared one before any pixel is decoded."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data), formats=["JPEG"])
        if img.size != (width, height):
            raise ProtocolError(BAD_OBSERVATION, f"JPEG of {img.size[0]}x{img.size[1]}, declared {width}x{height}")
        rgb = np.asarray(img.convert("RGB"))
    except ProtocolError:
        raise
    except Exception as exc:  # Pillow raises many types for a broken image
        raise ProtocolError(BAD_OBSERVATION, f"undecodable JPEG ({type(exc).__name__})") from None
    return rgb


def frame_to_wire(rgb: np.ndarray, encoding: str = "raw", quality: int = 90) -> dict:
    h, w = rgb.shape[:2]
    if encoding == "jpeg":
        return {"encoding": "jpeg", "width": int(w), "height": int(h), "data": encode_jpeg(rgb, quality)}
    return {"encoding": "raw", "data": array_to_wire(np.ascontiguousarray(rgb, dtype=np.uint8))}


def frame_from_wire(obj, rule: FrameRule) -> np.ndarray:
    if not isinstance(obj, dict) or obj.get("encoding") not in ENCODINGS:
        raise ProtocolError(BAD_OBSERVATION, f"'frame' must be a map with encoding one of {list(ENCODINGS)}")
    w, h = rule.width or None, rule.height or None
    if obj["encoding"] == "raw":
        return array_from_wire(obj.get("data"), "frame.data", ("uint8",), (h or (1, MAX_SIDE), w or (1, MAX_SIDE), 3))
    width, height = get_int(obj, "width", 1, MAX_SIDE), get_int(obj, "height", 1, MAX_SIDE)
    if (w and width != w) or (h and height != h):
        raise ProtocolError(BAD_OBSERVATION, f"frame {width}x{height}, the model takes {w}x{h} (width x height)")
    data = obj.get("data")
    if not isinstance(data, bytes) or len(data) > rule.max_bytes:
        raise ProtocolError(BAD_OBSERVATION, f"'frame.data' must be at most {rule.max_bytes} bytes of JPEG")
    return decode_jpeg(data, width, height)


def observation_to_wire(obs: ObservationData, encoding: str = "raw", quality: int = 90) -> dict:
    js = obs.joint_state
    out = {"stamp": float(obs.stamp), "joint_stamp": float(js.stamp), "joint_names": list(js.names),
           "positions": array_to_wire(np.asarray(js.positions, dtype=np.float64)),
           "velocities": None if js.velocities is None else array_to_wire(np.asarray(js.velocities, np.float64))}
    out["frame"] = None if obs.composed is None else frame_to_wire(obs.composed, encoding, quality)
    return out


def observation_from_wire(obj, rule: FrameRule, instruction: str = "") -> ObservationData:
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_OBSERVATION, "an observation is a map")
    stamp = get_float(obj, "stamp", 0.0, 1e12)
    joint_stamp = get_float(obj, "joint_stamp", 0.0, 1e12, default=stamp)
    names = get_names(obj, "joint_names")
    n = len(names)
    positions = finite(array_from_wire(obj.get("positions"), "positions", ("float64", "float32"), (n,)), "positions")
    velocities = obj.get("velocities")
    if velocities is not None:
        velocities = finite(array_from_wire(velocities, "velocities", ("float64", "float32"), (n,)), "velocities")
        velocities = velocities.astype(np.float64)
    frame = obj.get("frame")
    composed = None if frame is None else frame_from_wire(frame, rule)
    return ObservationData(stamp, ["composed"] if composed is not None else [],
                           [composed] if composed is not None else [],
                           JointStateData(joint_stamp, names, positions.astype(np.float64), velocities),
                           instruction=instruction, composed=composed)


def error(code: str, message: str, request_id=None, **extra) -> dict:
    return {"type": "error", "id": request_id, "code": code, "message": str(message)[:300], **extra}
