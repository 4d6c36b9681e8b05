"""Checkpoint loading, verification and conversion on real official-format files (the parity
state dict), plus a wrong preset and a truncated download: clear errors, nothing half-loaded."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from kairos_ros.model.checkpoint import CheckpointError, convert_checkpoint, load_checkpoint, read_header
from kairos_ros.model.config import get_preset
from kairos_ros.model.wam import KairosWAM

FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_parity",
                    "state_dict_fp16.safetensors")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "kairos_ros.tools.checkpoint_cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_load_with_dtype_mapping():
    model = KairosWAM(get_preset("kairos-parity"))
    header = load_checkpoint(model, FILE, dtype=torch.float32)
    assert len(header.tensors) == 252
    w = model.state_dict()["video_dit.blocks.3.gated_delta.A_log"]
    assert w.dtype == torch.float32 and w.abs().sum() > 0


def test_load_into_meta_model_materialises_it():
    with torch.device("meta"):
        model = KairosWAM(get_preset("kairos-parity"))
    load_checkpoint(model, FILE, dtype=torch.float32)
    assert not any(p.is_meta for p in model.parameters())


def test_wrong_preset_is_refused_with_keys_named_and_model_untouched():
    model = KairosWAM(get_preset("kairos-test"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, FILE)
    text = str(err.value)
    assert "249 shape mismatches" in text and "action_dit.action_encoder.weight (128, 14) != model (32, 6)" in text
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_truncated_file_is_refused(tmp_path):
    bad = tmp_path / "truncated.safetensors"
    with open(FILE, "rb") as src:
        bad.write_bytes(src.read()[:-5000])
    model = KairosWAM(get_preset("kairos-parity"))
    before = model.state_dict()["action_dit.head.weight"].clone()
    with pytest.raises(CheckpointError, match="truncated: tensor '.*' ends at byte"):
        load_checkpoint(model, str(bad))
    assert torch.equal(before, model.state_dict()["action_dit.head.weight"])
    with pytest.raises(CheckpointError, match="does not exist"):
        read_header(str(tmp_path / "nope.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x01")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        read_header(str(tmp_path / "junk.safetensors"))


def test_convert_and_cli(tmp_path):
    out = tmp_path / "fp32.safetensors"
    assert convert_checkpoint(FILE, str(out), torch.float32, progress=False) == 252
    assert {d for _, d in read_header(str(out)).tensors.values()} == {"F32"}
    res = cli("verify", str(out), "--preset", "kairos-parity")
    assert res.returncode == 0 and "fits preset kairos-parity exactly" in res.stdout
    res = cli("verify", FILE, "--preset", "kairos-4b-wam")
    assert res.returncode == 1 and "missing keys" in res.stderr and "shape mismatches" in res.stderr
    res = cli("inspect", FILE)
    assert res.returncode == 0 and "252 tensors" in res.stdout and "video_dit" in res.stdout
    res = cli("inspect", str(tmp_path / "missing.safetensors"))
    assert res.returncode == 2 and "does not exist" in res.stderr
    shutil.copy(FILE, tmp_path / "copy.safetensors")
    res = cli("convert", str(tmp_path / "copy.safetensors"), str(tmp_path / "bf16.safetensors"), "--dtype", "bf16")
    assert res.returncode == 0 and {d for _, d in read_header(str(tmp_path / "bf16.safetensors")).tensors.values()} == {"BF16"}
