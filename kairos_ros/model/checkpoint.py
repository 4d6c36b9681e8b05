"""Checkpoints in the official layout (safetensors, `video_dit.*` / `action_dit.*` keys).

Everything is checked before a single tensor is loaded, so a bad file never half-loads a model:
the file's sha256 against its sidecar `<file>.sha256` when there is one (a flipped bit is caught
here), then the header, validated field by field before anything is allocated from it (its length
bounded and inside the file, a JSON object, every tensor's dtype known, shape non-negative
integers, byte range exactly shape x item size, inside the data section, no overlaps and no gaps,
metadata strings), then keys and shapes against the model exactly (strict), with the offending
keys named. Every refusal is a CheckpointError naming the file (and the tensor).
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import torch

from kairos_ros.core.digest import valid_sha256

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
MAX_HEADER = 100_000_000  # bytes; the safetensors library's own limit
SIDECAR = ".sha256"  # `<file>.sha256`, sha256sum's format: "<64 hex digits>  <file name>"


class CheckpointError(ValueError):
    """A checkpoint that does not fit; the message names the file and the offending keys."""


@dataclass
class Header:
    path: str
    tensors: dict  # name -> (shape tuple, dtype string)
    metadata: dict = field(default_factory=dict)

    @property
    def num_params(self) -> int:
        total = 0
        for shape, _ in self.tensors.values():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


def read_header(path: str, verify: bool = True) -> Header:
    """Parse and check a safetensors header without reading tensor data; with `verify`, first the
    file's sha256 against its sidecar when there is one (check_sha256)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if verify:
        check_sha256(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"'{path}' is not a safetensors file ({size} bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > MAX_HEADER:  # checked before a byte of it is read
            raise CheckpointError(f"'{path}' is truncated or not a safetensors file (header of {n} bytes, file {size})")
        text = f.read(n)
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"'{path}': unreadable safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"'{path}': the safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckpointError(f"'{path}': the safetensors __metadata__ must map strings to strings")
    tensors = {name: _tensor_entry(path, name, info, size - 8 - n) for name, info in header.items()}
    _check_layout(path, tensors, size - 8 - n)
    return Header(path, {name: (shape, dtype) for name, (shape, dtype, _) in tensors.items()}, meta)


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key '{key}' appears twice")
        seen[key] = value
    return seen


def _tensor_entry(path: str, name: str, info, data_size: int):
    """(shape, dtype, (begin, end)) of one header entry, every field checked."""
    where = f"'{path}': tensor '{name}'"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise CheckpointError(f"{where}: a header entry needs dtype, shape and data_offsets (got {str(info)[:120]})")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise CheckpointError(f"{where} has unsupported dtype {dtype!r} (known: {sorted(_DTYPES)})")
    if not isinstance(shape, list) or not all(_uint(d) for d in shape):
        raise CheckpointError(f"{where}: shape {shape!r} must be a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_uint(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise CheckpointError(f"{where}: data_offsets {offsets!r} must be [begin, end], 0 <= begin <= end")
    begin, end = offsets
    if end > data_size:
        raise CheckpointError(f"'{path}' is truncated: tensor '{name}' ends at byte {end} of the data section, "
                              f"which holds only {data_size} bytes")
    count = 1
    for d in shape:
        count *= d
    if (end - begin) != count * ITEMSIZE[dtype]:
        raise CheckpointError(f"{where}: dtype {dtype} x shape {shape} is {count * ITEMSIZE[dtype]} bytes but its "
                              f"data_offsets [{begin}, {end}] cover {end - begin}")
    return tuple(shape), dtype, (begin, end)


def _uint(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(path: str, tensors: dict, data_size: int) -> None:
    """The tensors tile the data section exactly: no two share a byte, none leaves a gap (what the
    safetensors library requires too, there with an unnamed error)."""
    spans = sorted((rng, name) for name, (_, _, rng) in tensors.items() if rng[1] > rng[0])
    at, previous = 0, None
    for (begin, end), name in spans:
        if begin < at:
            raise CheckpointError(f"'{path}': tensors '{previous}' and '{name}' overlap (bytes {begin} to "
                                  f"{min(at, end)} of the data section belong to both)")
        if begin > at:
            after = f"after tensor '{previous}'" if previous else "at the start of the data section"
            raise CheckpointError(f"'{path}': {begin - at} unused bytes {after}, before tensor '{name}' "
                                  f"(data_offsets must be contiguous)")
        at, previous = end, name
    if at != data_size:
        raise CheckpointError(f"'{path}': the tensors cover {at} bytes but the data section holds {data_size} "
                              "(trailing bytes: corrupt or not a safetensors file)")


# -- integrity: sha256 sidecars and expected digests ----------------------------------------------
_DIGESTS: dict = {}  # (realpath, dev, inode, size, mtime_ns) -> sha256 hex: a file is hashed once per process


def file_sha256(path: str) -> str:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def sidecar_path(path: str) -> str:
    return path + SIDECAR


def read_sidecar(path: str) -> str | None:
    """The digest `<path>.sha256` gives for `path` (sha256sum's format), or None without a sidecar."""
    side = sidecar_path(path)
    if not os.path.isfile(side):
        return None
    try:
        with open(side, encoding="utf-8") as f:
            lines = [line.strip() for line in f.read(1 << 16).splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"'{side}': unreadable sha256 sidecar ({exc})") from exc
    entries = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.strip().lstrip("*")  # "<hex>  name" (text mode) or "<hex> *name" (binary mode)
        if not valid_sha256(digest):
            raise CheckpointError(f"'{side}': not a sha256sum line: {line[:100]!r} (want '<64 hex digits>  <file>')")
        entries.append((digest.lower(), name))
    base = os.path.basename(path)
    mine = [d for d, name in entries if name in ("", base) or os.path.basename(name) == base]
    if not mine:
        raise CheckpointError(f"'{side}' holds no digest for '{base}' (it names {[n for _, n in entries][:4]})")
    return mine[0]


def write_sidecar(path: str) -> str:
    """Write `<path>.sha256` ("<digest>  <file name>"); returns the line written."""
    if not os.path.isfile(path):
        raise CheckpointError(f"'{path}' is not a file")
    line = f"{file_sha256(path)}  {os.path.basename(path)}"
    with open(sidecar_path(path), "w", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


def check_sha256(path: str, expected: str = "", what: str = "") -> str | None:
    """Check a file's sha256 against its sidecar `<path>.sha256` (when there is one) and against
    `expected` (when given; `what` names where it came from, e.g. a parameter). Returns the digest
    when one was checked; raises CheckpointError naming the file and both digests on a mismatch."""
    side = read_sidecar(path)
    if side is None and not expected:
        return None
    actual = file_sha256(path)
    for want, source in ((side, f"its sidecar '{sidecar_path(path)}'"), (expected, what or "the expected digest")):
        if want and want.lower() != actual:
            raise CheckpointError(f"'{path}' is corrupt or not the expected file: its sha256 is {actual} but "
                                  f"{source} says {want.lower()}")
    return actual


def compare(header: Header, expected: dict, limit: int = 20) -> list[str]:
    """Problems between a checkpoint and the model's {key: shape}; [] when they match exactly."""
    have = {k: v[0] for k, v in header.tensors.items()}
    missing = sorted(set(expected) - set(have))
    unexpected = sorted(set(have) - set(expected))
    wrong = sorted(k for k in set(have) & set(expected) if tuple(have[k]) != tuple(expected[k]))

    def listed(keys, show=lambda k: k):
        more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
        return ", ".join(show(k) for k in keys[:limit]) + more

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {listed(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches: "
                        + listed(wrong, lambda k: f"{k} {tuple(have[k])} != model {tuple(expected[k])}"))
    return problems


def load_checkpoint(model: torch.nn.Module, path: str, dtype: torch.dtype | None = None,
                    device: str | torch.device = "cpu", progress: bool = False) -> Header:
    """Strictly load `path` into `model` (also a model built on the meta device). Raises
    CheckpointError naming the problems; the model is untouched then."""
    from safetensors import safe_open

    header = read_header(path)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = compare(header, expected)
    if problems:
        raise CheckpointError(f"'{path}' does not fit the model: " + "; ".join(problems))
    state = {}
    keys = sorted(header.tensors)
    bar = _bar(len(keys), f"loading {os.path.basename(path)}", progress)
    with safe_open(path, framework="pt", device="cpu") as f:
        for key in keys:
            t = f.get_tensor(key)
            state[key] = t.to(device=device, dtype=dtype or t.dtype)
            bar.update(1)
    bar.close()
    on_meta = any(p.is_meta for p in model.parameters())
    model.load_state_dict(state, strict=True, assign=on_meta or dtype is not None)
    return header


def save_checkpoint(state: dict, path: str, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, path,
              metadata={k: str(v) for k, v in (metadata or {}).items()})
    # safetensors writes through a private temporary file (mode 0600): give the checkpoint the
    # permissions any other file the user writes gets (0666 less the umask), so the robot's
    # service account or a teammate can read weights trained under another account
    os.chmod(path, _default_file_mode(os.path.dirname(os.path.abspath(path))))


def _default_file_mode(folder: str) -> int:
    """The mode a new file in `folder` gets from open() under the process umask (read from a
    probe file: os.umask would change it for every thread while it is read)."""
    probe = os.path.join(folder, f".mode-probe-{os.getpid()}-{id(folder)}")
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    try:
        return os.fstat(fd).st_mode & 0o777
    finally:
        os.close(fd)
        os.unlink(probe)


def convert_checkpoint(src: str, dst: str, dtype: torch.dtype | None = None, progress: bool = True) -> int:
    """Copy a checkpoint, optionally casting floating tensors to `dtype`; returns the tensor count."""
    from safetensors import safe_open

    header = read_header(src)
    out = {}
    bar = _bar(len(header.tensors), f"converting {os.path.basename(src)}", progress)
    with safe_open(src, framework="pt", device="cpu") as f:
        for key in sorted(header.tensors):
            t = f.get_tensor(key)
            out[key] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
            bar.update(1)
    bar.close()
    save_checkpoint(out, dst, {**header.metadata, "converted_from": os.path.basename(src)})
    return len(out)


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="tensor", disable=not enabled)
