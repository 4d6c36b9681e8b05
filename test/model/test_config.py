"""Model configs: the presets carry the published / fixture dimensions, bad values are refused with
the values quoted, and the model package imports no ROS."""
import json
import os
import subprocess
import sys

import pytest

from kairos_ros.model.config import PRESETS, ActionExpertConfig, KairosConfig, VideoDiTConfig, get_preset

FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_parity")


def test_4b_presets_have_the_published_dims():
    for name, text, action, state in (("kairos-4b-wam", 2048, 14, 14), ("kairos-4b-wam-libero", 3584, 7, 8)):
        v, a = get_preset(name).video, get_preset(name).action
        assert (v.dim, v.ffn_dim, v.num_heads, v.head_dim, v.num_layers, v.freq_dim, v.text_dim) == \
            (2560, 10240, 20, 128, 32, 256, text)
        assert v.layer_types()[:4] == ["SWA", "SWA", "DSWA", "GATED"] and v.layer_types().count("GATED") == 8
        assert (v.rope_split, v.rope_theta, v.rope_len, v.window, v.dilation, v.patch) == \
            ((44, 42, 42), 10000.0, 1024, 3, 4, (1, 2, 2))
        assert (v.gdn_head_dim, v.gdn_expand_v, v.gdn_conv, v.eps) == (256, 2, 4, 1e-6)
        assert (a.dim, a.ffn_dim, a.attn_dim, a.num_heads, a.num_layers, a.action_dim, a.state_dim) == \
            (1024, 4096, 2560, 20, 32, action, state)


def test_parity_preset_is_the_fixture_config():
    with open(os.path.join(FIX, "manifest.json")) as f:
        m = json.load(f)
    vj, aj, gdn = m["config"]["video_dit"], m["config"]["action_dit"], m["effective_defaults"]["gdn"]
    v, a = get_preset("kairos-parity").video, get_preset("kairos-parity").action
    assert (v.dim, v.ffn_dim, v.num_heads, v.num_layers, v.freq_dim, v.text_dim, v.in_channels, v.out_channels) == \
        (vj["dim"], vj["ffn_dim"], vj["num_heads"], vj["num_layers"], vj["freq_dim"], vj["text_dim"], vj["in_dim"],
         vj["out_dim"])
    assert list(v.layers) == vj["layers_settings"] and list(v.patch) == vj["patch_size"] and v.eps == vj["eps"]
    assert (v.gdn_head_dim, v.gdn_head_dim * v.gdn_expand_v, v.gdn_conv) == \
        (gdn["head_k_dim"], gdn["head_v_dim"], gdn["conv_size"])
    assert (a.dim, a.ffn_dim, a.attn_dim, a.num_layers, a.freq_dim) == \
        (aj["dim"], aj["ffn_dim"], aj["attn_hidden_dim"], aj["num_layers"], aj["freq_dim"])
    head = aj["action_head_cfg"]
    assert (a.action_dim, a.state_dim) == (head["action_dim"], head["action_state_dim"])


def test_small_presets_keep_the_architecture():
    assert {"kairos-4b-wam", "kairos-4b-wam-libero", "kairos-parity", "kairos-nano", "kairos-test"} <= set(PRESETS)
    nano = get_preset("kairos-nano").video
    assert nano.layers == ("SWA", "SWA", "DSWA", "GATED") and nano.head_dim == 128 and nano.rope_split == (44, 42, 42)
    for cfg in PRESETS.values():
        assert cfg.action.attn_dim == cfg.video.dim and cfg.action.num_layers == cfg.video.num_layers


@pytest.mark.parametrize("make,message", [
    (lambda: get_preset("kairos-9b"), "unknown model preset 'kairos-9b'"),
    (lambda: VideoDiTConfig(num_heads=24), "video dim 2560 is not divisible by num_heads 24"),
    (lambda: VideoDiTConfig(rope_split=(40, 42, 42)), r"rope_split \(40, 42, 42\) must be .* head_dim 128"),
    (lambda: VideoDiTConfig(rope_split=(43, 43, 42)), r"rope_split \(43, 43, 42\)"),
    (lambda: VideoDiTConfig(layers=("SWA", "MLA"), num_layers=4), r"unknown video layer types \['MLA'\]"),
    (lambda: VideoDiTConfig(num_layers=30), r"num_layers 30 is not a multiple of the pattern"),
    (lambda: VideoDiTConfig(patch=(1, 2)), r"patch \(1, 2\) must be three positive ints"),
    (lambda: VideoDiTConfig(rope_len=8), "window 3 x dilation 4 spans 9 frames, more than rope_len 8"),
    (lambda: VideoDiTConfig(dim=0), r"VideoDiTConfig.dim = 0 must be a positive int"),
    (lambda: ActionExpertConfig(action_dim=0), r"ActionExpertConfig.action_dim = 0"),
    (lambda: ActionExpertConfig(num_heads=24), "action attn_dim 2560 must split into 24 heads"),
    (lambda: KairosConfig("x", action=ActionExpertConfig(num_layers=16)),
     "action num_layers 16 != video num_layers 32"),
    (lambda: KairosConfig("x", action=ActionExpertConfig(attn_dim=2048, num_heads=16)),
     "action attention 16 heads x 2048 must equal the video's 20 heads x 2560"),
])
def test_bad_values_are_refused_and_quoted(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_model_package_imports_no_ros():
    code = ("import sys, pkgutil, importlib, kairos_ros.model as m\n"
            "for info in pkgutil.iter_modules(m.__path__): importlib.import_module('kairos_ros.model.' + info.name)\n"
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('rclpy', 'kairos_msgs', 'sensor_msgs',"
            " 'std_msgs', 'trajectory_msgs', 'builtin_interfaces'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
