"""Hostile and damaged checkpoint files (issue 10): every safetensors header field is validated before
anything is allocated or loaded, and each refusal is a CheckpointError (a ValueError, which the node
turns into "[ERROR] refusing to start") naming the file and the tensor; a `<file>.sha256` sidecar
and the `<part>_sha256` parameters catch flipped bits."""
import json
import os
import shutil
import struct
import tracemalloc

import numpy as np
import pytest
import torch

from kairos_ros.backends import make_backend
from kairos_ros.backends.kairos_loading import check_digests
from kairos_ros.backends.kairos_setup import KairosOptions
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.params import load_ros_params_yaml, validate_params
from kairos_ros.model.checkpoint import (CheckpointError, check_sha256, file_sha256, load_checkpoint, read_header,
                                         read_sidecar, save_checkpoint, write_sidecar)
from kairos_ros.params.world_model import SCHEMA, backend_options

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(REPO, "data", "models", "kairos-nano-aloha")
PROFILE = os.path.join(REPO, "config", "aloha.yaml")


def write_raw(path, header: dict, data: bytes, length: int | None = None) -> str:
    """A safetensors file with exactly this header (no checks): what an attacker would hand us."""
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if length is None else length))
        f.write(text)
        f.write(data)
    return str(path)


def refused(path, *fragments):
    with pytest.raises(CheckpointError) as err:
        read_header(str(path))
    text = str(err.value)
    assert str(path) in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_dtype_disagreeing_with_the_byte_range_is_refused_naming_the_tensor(tmp_path):
    bad = write_raw(tmp_path / "range.safetensors", {"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}},
                    bytes(32))
    refused(bad, "tensor 'w'", "F32", "64 bytes", "cover 32")
    model = torch.nn.Linear(4, 4, bias=False)
    model.weight.data.zero_()
    with pytest.raises(CheckpointError, match="tensor 'w'"):
        load_checkpoint(model, bad)  # refused before safetensors sees it (it raised its own error, unnamed)
    assert model.weight.abs().sum() == 0


def test_overlapping_tensors_are_named(tmp_path):
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
    refused(write_raw(tmp_path / "overlap.safetensors", header, bytes(24)), "tensors 'a' and 'b' overlap")


def test_every_header_field_is_checked_and_valid_files_still_pass(tmp_path):
    one = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    refused(write_raw(tmp_path / "gap.safetensors", {"a": one, "b": {**one, "data_offsets": [12, 20]}}, bytes(20)),
            "4 unused bytes after tensor 'a'", "'b'")
    refused(write_raw(tmp_path / "trail.safetensors", {"a": one}, bytes(12)), "cover 8 bytes", "holds 12")
    cases = [({"a": {**one, "dtype": "F128"}}, "tensor 'a' has unsupported dtype 'F128'"),
             ({"a": {**one, "shape": [-2]}}, "tensor 'a': shape [-2] must be a list of non-negative integers"),
             ({"a": {**one, "shape": [2.0]}}, "tensor 'a': shape [2.0]"),
             ({"a": {**one, "shape": "2"}}, "tensor 'a': shape '2'"),
             ({"a": {**one, "data_offsets": [8, 0]}}, "tensor 'a': data_offsets [8, 0]"),
             ({"a": {**one, "data_offsets": [0, True]}}, "tensor 'a': data_offsets"),
             ({"a": {"dtype": "F32", "shape": [2]}}, "tensor 'a': a header entry needs dtype, shape and data_offsets"),
             ({"a": [1, 2]}, "tensor 'a': a header entry needs"),
             ({"a": {**one, "data_offsets": [0, 800]}}, "truncated: tensor 'a' ends at byte 800"),
             ({"__metadata__": {"k": 3}, "a": one}, "__metadata__ must map strings to strings"),
             ({"__metadata__": ["x"], "a": one}, "__metadata__ must map strings to strings")]
    for i, (header, fragment) in enumerate(cases):
        refused(write_raw(tmp_path / f"field{i}.safetensors", header, bytes(8)), fragment)
    for i, text in enumerate([b"[1, 2]", b"\xff\xfe{}", b'{"a": 1, "a": 2}', b"{not json"]):
        path = tmp_path / f"json{i}.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text)
        refused(path, "the safetensors header is not a JSON object" if i == 0 else "unreadable safetensors header")
    # sizes are checked before anything is read or allocated
    huge = write_raw(tmp_path / "huge.safetensors", {}, b"", length=10 ** 12)
    refused(huge, "header of 1000000000000 bytes")
    sparse = tmp_path / "sparse.safetensors"  # a 300 MB file (sparse: no disk) claiming a 250 MB header
    with open(sparse, "wb") as f:
        f.write(struct.pack("<Q", 250_000_000))
        f.truncate(300_000_000)
    tracemalloc.start()
    try:
        refused(sparse, "header of 250000000 bytes")
        assert tracemalloc.get_traced_memory()[1] < 10_000_000
    finally:
        tracemalloc.stop()
    # what the checks must not refuse: empty tensors, metadata, the bundled files
    path = str(tmp_path / "ok.safetensors")
    save_checkpoint({"a": torch.ones(3), "empty": torch.zeros(0, 4), "b": torch.ones(2, 2, dtype=torch.bfloat16)},
                    path, {"note": "x"})
    h = read_header(path)
    assert h.tensors == {"a": ((3,), "F32"), "empty": ((0, 4), "F32"), "b": ((2, 2), "BF16")}
    assert h.metadata == {"note": "x"}
    for name in os.listdir(MODEL):
        if name.endswith(".safetensors"):
            assert read_header(os.path.join(MODEL, name)).tensors


def flipped_copy(tmp_path, name="dit.safetensors", byte=-1000) -> str:
    """A copy of a bundled file with one bit flipped in its tensor data, its sidecar copied along."""
    src = os.path.join(MODEL, name)
    dst = tmp_path / name
    data = bytearray(open(src, "rb").read())
    data[byte] ^= 0x10
    dst.write_bytes(bytes(data))
    shutil.copy(src + ".sha256", str(dst) + ".sha256")
    return str(dst)


def test_bundled_files_ship_matching_sidecars():
    for name in ("dit.safetensors", "codec.safetensors", "text.safetensors"):
        path = os.path.join(MODEL, name)
        assert read_sidecar(path) == file_sha256(path) and check_sha256(path) == file_sha256(path)


def test_a_flipped_bit_is_caught_by_the_sidecar(tmp_path):
    bad = flipped_copy(tmp_path)
    good = read_sidecar(os.path.join(MODEL, "dit.safetensors"))
    with pytest.raises(CheckpointError) as err:
        read_header(bad)
    text = str(err.value)
    assert bad in text and good in text and file_sha256(bad) in text and "sidecar" in text
    read_header(bad, verify=False)  # the header itself is intact: only the digest tells


def test_sidecar_format_is_checked(tmp_path):
    path = str(tmp_path / "f.safetensors")
    save_checkpoint({"a": torch.ones(2)}, path)
    assert check_sha256(path) is None  # no sidecar, no digest asked for: nothing hashed
    line = write_sidecar(path)
    assert line == f"{file_sha256(path)}  f.safetensors" and open(path + ".sha256").read() == line + "\n"
    assert check_sha256(path) == file_sha256(path)
    with open(path + ".sha256", "w") as f:
        f.write(f"{file_sha256(path)} *f.safetensors\n")  # sha256sum's binary-mode marker
    assert check_sha256(path) == file_sha256(path)
    with open(path + ".sha256", "w") as f:
        f.write("deadbeef  f.safetensors\n")
    with pytest.raises(CheckpointError, match="not a sha256sum line"):
        read_header(path)
    with open(path + ".sha256", "w") as f:
        f.write(f"{file_sha256(path)}  other.safetensors\n")
    with pytest.raises(CheckpointError, match="holds no digest for 'f.safetensors'"):
        read_header(path)


def test_sha256_parameters(tmp_path):
    good = os.path.join(MODEL, "dit.safetensors")
    digest = file_sha256(good)
    check_digests(KairosOptions(dit_checkpoint=good, dit_checkpoint_sha256=digest.upper()))
    wrong = "0" * 64
    with pytest.raises(CheckpointError) as err:
        check_digests(KairosOptions(dit_checkpoint=good, dit_checkpoint_sha256=wrong))
    assert good in str(err.value) and digest in str(err.value) and wrong in str(err.value)
    assert "parameter 'dit_checkpoint_sha256'" in str(err.value)
    with pytest.raises(ValueError, match="parameter 'codec_checkpoint_sha256' = 'abc' must be a sha256 digest"):
        KairosOptions(codec_checkpoint="x", codec_checkpoint_sha256="abc")
    with pytest.raises(ValueError, match="'text_checkpoint_sha256' is set but 'text_checkpoint' is empty"):
        KairosOptions(text_checkpoint_sha256=digest)
    folder = tmp_path / "qwen"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(CheckpointError, match="is a folder: a digest checks one file"):
        check_digests(KairosOptions(text_checkpoint=str(folder), text_checkpoint_sha256=digest))
    write_sidecar(str(folder / "model.safetensors"))
    check_digests(KairosOptions(text_checkpoint=str(folder)))
    (folder / "model.safetensors").write_bytes(b"weightz")
    with pytest.raises(CheckpointError, match="model.safetensors' is corrupt"):
        check_digests(KairosOptions(text_checkpoint=str(folder)))


def bundled_params(**override):
    params = validate_params(SCHEMA, {**load_ros_params_yaml(PROFILE, "world_model"), "backend": "kairos",
                                      **override})
    return params, load_embodiment(params["embodiment"])


def test_the_backend_refuses_a_flipped_bit_and_a_wrong_parameter_digest(tmp_path):
    bad = flipped_copy(tmp_path)
    params, spec = bundled_params(dit_checkpoint=bad)
    with pytest.raises(ValueError, match="is corrupt or not the expected file") as err:
        make_backend("kairos", spec, **backend_options(params))
    assert bad in str(err.value)
    codec = os.path.join(MODEL, "codec.safetensors")
    params, spec = bundled_params(codec_checkpoint_sha256="ab" * 32)
    with pytest.raises(ValueError, match="parameter 'codec_checkpoint_sha256' says abab") as err:
        make_backend("kairos", spec, **backend_options(params))
    assert codec in str(err.value) and file_sha256(codec) in str(err.value)
    params, spec = bundled_params(codec_checkpoint_sha256=file_sha256(codec))
    b = make_backend("kairos", spec, **backend_options(params))
    assert b.random_parts == [] and np.isfinite(b.net.action_dit.action_encoder.weight.detach().numpy()).all()


def run_node(params: dict) -> tuple[int, str]:
    """The real world_model node process on the ALOHA profile (the bundled weights) with `params`
    on top; waits for it to exit by itself (it must refuse to start)."""
    from integration.rosutil import NodeProcess

    node = NodeProcess("kairos_ros.nodes.world_model_node", "world_model", {"backend": "kairos", **params},
                       param_files=[PROFILE])
    try:
        code = node.proc.wait(timeout=120)
        return code, node.output()
    finally:
        node.stop()


def test_node_refuses_to_start_on_a_flipped_bit(tmp_path):
    bad = flipped_copy(tmp_path)
    code, out = run_node({"dit_checkpoint": bad})
    assert code == 2, out[-3000:]
    assert "[ERROR] refusing to start:" in out and f"'{bad}' is corrupt or not the expected file" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_node_refuses_to_start_on_a_header_lying_about_a_byte_range(tmp_path):
    """The bundled DiT (float16) with one tensor's dtype changed to F32, its offsets unchanged: the
    header claims twice the bytes its range covers."""
    raw = open(os.path.join(MODEL, "dit.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    name = "action_dit.action_encoder.weight"
    assert header[name]["dtype"] == "F16"
    header[name]["dtype"] = "F32"
    bad = write_raw(tmp_path / "dit.safetensors", header, raw[8 + n:])
    code, out = run_node({"dit_checkpoint": bad})
    assert code == 2, out[-3000:]
    assert "[ERROR] refusing to start:" in out and bad in out and f"tensor '{name}'" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
