"""The 4B presets, built on the meta device (no 4B allocation), have exactly the official
checkpoint keys and shapes (manifests built from the official module definitions, copied to
test/fixtures/kairos_keys) and the published parameter totals; the state dict holds parameters
only (RoPE tables are plain attributes, not buffers)."""
import os

import pytest
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.layers import RopeTable
from kairos_ros.model.wam import KairosWAM

KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_keys")


def manifest(name):
    out = {}
    with open(os.path.join(KEYS, name)) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, shape, dtype = line.rstrip("\n").split("\t")
            assert dtype == "torch.float32"
            out[key] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    return out


@pytest.mark.parametrize("preset,file,video,action", [
    ("kairos-4b-wam", "kairos-4b-wam-robotwin.keys.tsv", 4_046_680_960, 955_849_742),
    ("kairos-4b-wam-libero", "kairos-4b-wam-libero.keys.tsv", 4_050_613_120, 966_062_087),
])
def test_4b_keys_and_shapes(preset, file, video, action):
    with torch.device("meta"):
        model = KairosWAM(get_preset(preset))
    expected = manifest(file)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(expected) == 1785
    assert sorted(set(expected) - set(state)) == [], "missing keys"
    assert sorted(set(state) - set(expected)) == [], "unexpected keys"
    wrong = {k: (state[k], expected[k]) for k in expected if state[k] != expected[k]}
    assert not wrong, f"shape mismatches: {list(wrong.items())[:5]}"
    assert all(k.startswith(("video_dit.", "action_dit.")) for k in state)
    assert sum(p.numel() for p in model.video_dit.parameters()) == video
    assert sum(p.numel() for p in model.action_dit.parameters()) == action
    assert list(model.buffers()) == [] and set(state) == {k for k, _ in model.named_parameters()}
    assert isinstance(model.video_dit.rope, RopeTable) and model.video_dit.rope.dims == (44, 42, 42)
