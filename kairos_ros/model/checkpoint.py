"""Checkpoints in the official layout (safetensors, `video_dit.*` / `action_dit.*` keys).

Everything is checked before a single tensor is loaded, so a bad file never half-loads a model:
the header must parse, every tensor's byte range must lie inside the file (a truncated download
is caught here), and keys and shapes must match the model exactly (strict), with the offending
keys named.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

import torch

_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


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


def read_header(path: str) -> Header:
    """Parse and check a safetensors header without reading tensor data."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"'{path}' is not a safetensors file ({size} bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > 100_000_000:
            raise CheckpointError(f"'{path}' is truncated or not a safetensors file (header of {n} bytes, file {size})")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"'{path}': unreadable safetensors header ({exc})") from exc
    meta = header.pop("__metadata__", {}) or {}
    data_size = size - 8 - n
    tensors, end_max = {}, 0
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if end > data_size:
            raise CheckpointError(f"'{path}' is truncated: tensor '{name}' ends at byte {end} of the data section, "
                                  f"which holds only {data_size} bytes")
        if info["dtype"] not in _DTYPES:
            raise CheckpointError(f"'{path}': tensor '{name}' has unsupported dtype {info['dtype']}")
        tensors[name] = (tuple(info["shape"]), info["dtype"])
        end_max = max(end_max, end)
    return Header(path, tensors, meta)


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
