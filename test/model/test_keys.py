"""The 4B presets, built on the meta device (no 4B allocation), have exactly the official
checkpoint keys and shapes (manifests built from the official module definitions)."""
import os

import pytest
import torch

from kairos_ros.model.config import PRESETS, ActionExpertConfig, VideoDiTConfig, get_preset
from kairos_ros.model.wam import KairosWAM

KEYS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_keys")


def manifest(name):
    out = {}
    with open(os.path.join(KEYS, name)) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, shape, _dtype = line.rstrip("\n").split("\t")
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
    assert sum(p.numel() for p in model.video_dit.parameters()) == video
    assert sum(p.numel() for p in model.action_dit.parameters()) == action


def test_presets_and_validation():
    assert {"kairos-4b-wam", "kairos-nano", "kairos-parity", "kairos-test"} <= set(PRESETS)
    with pytest.raises(ValueError, match="unknown model preset 'kairos-9b'"):
        get_preset("kairos-9b")
    with pytest.raises(ValueError, match=r"rope_split \(40, 42, 42\)"):
        VideoDiTConfig(rope_split=(40, 42, 42))
    with pytest.raises(ValueError, match="unknown video layer types \\['MLA'\\]"):
        VideoDiTConfig(layers=("SWA", "MLA"), num_layers=4)
    with pytest.raises(ValueError, match="num_layers 30"):
        VideoDiTConfig(num_layers=30)
    with pytest.raises(ValueError, match="action_dim = 0"):
        ActionExpertConfig(action_dim=0)
