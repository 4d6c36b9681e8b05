"""What the kairos backend decides before its first prediction: device, dtype, the preset's size
against the device, layouts against the embodiment's slots, statistics; each refusal named."""
import json

import numpy as np
import pytest
import torch

from kairos_helpers import make_spec, obs
from kairos_ros.backends import make_backend
from kairos_ros.backends.kairos_setup import (KairosOptions, check_size, layouts, model_config, normalizers,
                                              resolve_device, resolve_dtype)
from kairos_ros.core.action_space import LIBERO_ACTION_SLOTS, ROBOTWIN_SLOTS
from kairos_ros.model.config import get_preset


def test_device_and_dtype():
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu and resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="parameter 'dtype' = 'float16' on the CPU"):
        resolve_dtype("float16", cpu)
    with pytest.raises(ValueError, match="parameter 'device' = 'tpu'"):
        resolve_device("tpu")
    if torch.cuda.is_available():  # both branches are real: which one runs depends on the machine
        assert resolve_device("cuda").type == "cuda" and resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    else:
        assert resolve_device("auto") == cpu
        with pytest.raises(ValueError, match="parameter 'device' = 'cuda' but torch sees no CUDA device"):
            resolve_device("cuda")


def test_4b_presets_are_refused_on_the_cpu_unless_forced():
    cpu = torch.device("cpu")
    for name in ("kairos-4b-wam", "kairos-4b-wam-libero"):
        with pytest.raises(ValueError, match=f"parameter 'model_preset' = '{name}' has 5.0.B parameters: refused on "
                                             "the CPU .* allow_large_preset_on_cpu:=true"):
            check_size(get_preset(name), cpu, forced=False)
    assert check_size(get_preset("kairos-4b-wam"), cpu, forced=True) == 4_046_680_960 + 955_849_742
    assert check_size(get_preset("kairos-nano"), cpu, forced=False) < 20_000_000
    with pytest.raises(ValueError, match="refused on the CPU"):  # through the registry, before any allocation
        make_backend("kairos", make_spec(ROBOTWIN_SLOTS), model_preset="kairos-4b-wam", device="cpu",
                     allow_random_weights=True)


def test_preset_layouts_and_fit(specs):
    dual, arm = specs["dual"], specs["arm"]
    assert layouts(dual, KairosOptions(model_preset="kairos-4b-wam"), None) == (list(ROBOTWIN_SLOTS),) * 2
    with pytest.raises(ValueError, match=r"action layout needs slots \['left_arm.joint_1'.*embodiment 'arm' does not"):
        layouts(arm, KairosOptions(model_preset="kairos-4b-wam"), None)
    with pytest.raises(ValueError, match=r"needs slots \['arm.d_eef_x'"):  # LIBERO: delta end-effector actions
        layouts(arm, KairosOptions(model_preset="kairos-4b-wam-libero"), None)
    extra = make_spec(list(ROBOTWIN_SLOTS) + ["head.pan"], "with_head")
    with pytest.raises(ValueError, match=r"slots \['head.pan'\] are not in the model's action layout"):
        layouts(extra, KairosOptions(model_preset="kairos-4b-wam"), None)
    with pytest.raises(ValueError, match=r"repeats slots \['arm.joint_1'\]"):
        layouts(arm, KairosOptions(action_layout=list(arm.slot_names) + ["arm.joint_1"]), None)
    shuffled = list(reversed(arm.slot_names))
    assert layouts(arm, KairosOptions(action_layout=shuffled), None) == (shuffled, shuffled)
    assert len(LIBERO_ACTION_SLOTS) == get_preset("kairos-4b-wam-libero").action.action_dim


def test_model_config_resizes_nano_only(specs):
    arm = specs["arm"]
    cfg = model_config(KairosOptions(), list(arm.slot_names), list(arm.slot_names)[:3], None)
    assert (cfg.action.action_dim, cfg.action.state_dim) == (8, 3) and cfg.video == get_preset("kairos-nano").video
    with pytest.raises(ValueError, match=r"'kairos-4b-wam' takes 14 action / 14 state values, but the layouts have "
                                         r"8 / 8 slots"):
        model_config(KairosOptions(model_preset="kairos-4b-wam"), list(arm.slot_names), list(arm.slot_names), None)


def stats_file(tmp_path, n, kind="zscore"):
    stats = {}
    for which in ("action", "state"):
        stats[f"{which}/default/global_mean"] = [0.5] * n
        stats[f"{which}/default/global_std"] = [2.0] * n
        stats[f"{which}/default/global_min"] = [-3.0] * n
        stats[f"{which}/default/global_max"] = [1.0] * n
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats))
    return str(path)


def test_statistics(tmp_path, specs):
    slots = list(specs["arm"].slot_names)
    with pytest.raises(ValueError, match="parameter 'action_stats' is empty and the DiT checkpoint carries no"):
        normalizers(KairosOptions(), None, slots, slots, trained=True)
    assert normalizers(KairosOptions(), None, slots, slots, trained=False) == (None, None)
    act, state = normalizers(KairosOptions(action_stats=stats_file(tmp_path, 8)), None, slots, slots, trained=True)
    assert act.denormalize(np.ones(8)) == pytest.approx(np.full(8, 2.5)) and state.kind == "zscore"
    mm, _ = normalizers(KairosOptions(action_stats=stats_file(tmp_path, 8), normalization="minmax"), None, slots,
                        slots, trained=True)
    assert mm.denormalize(np.ones(8)) == pytest.approx(np.ones(8))
    with pytest.raises(ValueError, match="action statistics have 5 values but the model.s action input has 8"):
        normalizers(KairosOptions(action_stats=stats_file(tmp_path, 5)), None, slots, slots, trained=True)
    with pytest.raises(ValueError, match="parameter 'action_stats' = '/nope.json'"):
        normalizers(KairosOptions(action_stats="/nope.json"), None, slots, slots, trained=True)


def test_layout_order_and_statistics_reach_the_chunk(tmp_path, specs):
    """The model's layout order and its statistics map back onto the embodiment's slots."""
    arm = specs["arm"]
    order = list(reversed(arm.slot_names))
    b = make_backend("kairos", arm, allow_random_weights=True, flow_steps=1, action_layout=order,
                     action_stats=stats_file(tmp_path, 8))
    norm = torch.arange(8, dtype=torch.float32).view(1, 1, 8) / 10  # layout position k holds k / 10
    values = b._to_slots(norm)[0]
    assert values == pytest.approx([(7 - k) / 10 * 2.0 + 0.5 for k in range(8)], abs=1e-6)
    q = np.linspace(-0.5, 0.5, 8)
    ctx, _ = b._context([obs(arm, 1.0, q=q)])
    want = (q[::-1] - 0.5) / 2.0  # the proprio token is computed from the normalised state in layout order
    enc = b.net.action_dit.proprio_encoder
    with torch.no_grad():
        assert torch.allclose(ctx[0, -1], enc(torch.tensor(want, dtype=torch.float32))[None][0], atol=1e-6)


def manifest_header(name):
    """A safetensors header with exactly the keys and shapes of an official 4B checkpoint (from the
    manifests in test/fixtures/kairos_keys; no 4B file exists on these machines)."""
    import ast
    import os

    from kairos_ros.model.checkpoint import Header

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_keys", name)
    tensors = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                key, shape, _ = line.rstrip("\n").split("\t")
                tensors[key] = (tuple(ast.literal_eval(shape)), "BF16")
    return Header(path, tensors)


def test_official_4b_checkpoint_keys_pass_the_start_up_checks(specs):
    from kairos_ros.backends.kairos_loading import check_dit
    from kairos_ros.model.checkpoint import CheckpointError
    from kairos_ros.model.nano_format import dit_info

    header = manifest_header("kairos-4b-wam-robotwin.keys.tsv")
    info = dit_info(header)
    assert (info.action_dim, info.state_dim, info.action_slots) == (14, 14, None)
    opts = KairosOptions(model_preset="kairos-4b-wam", dit_checkpoint=header.path)
    action, state = layouts(specs["dual"], opts, info)
    cfg = model_config(opts, action, state, info)
    check_dit(cfg, header)  # strict: every key and shape of the official file
    libero = manifest_header("kairos-4b-wam-libero.keys.tsv")
    with pytest.raises(CheckpointError, match="does not fit the model 'kairos-4b-wam': .*shape mismatches: "
                                              r"action_dit.action_encoder.weight \(1024, 7\) != model \(1024, 14\)"):
        check_dit(cfg, libero)


def test_every_kairos_option_has_one_schema_entry_with_the_same_default():
    """One source per setting: the backend's options are KairosOptions' fields; the node's schema
    documents and validates each with the same default, and backend_options passes all of them."""
    from dataclasses import MISSING, fields

    from kairos_ros.backends.kairos_options import KairosOptions
    from kairos_ros.core.params import validate_params
    from kairos_ros.params.world_model import SCHEMA, backend_options

    schema = {spec.name: spec for spec in SCHEMA}
    for f in fields(KairosOptions):
        assert f.name in schema, f"kairos option '{f.name}' has no parameter in the world model's schema"
        default = f.default if f.default is not MISSING else f.default_factory()
        assert schema[f.name].default == default, (f.name, schema[f.name].default, default)
    passed = backend_options(validate_params(SCHEMA, {"backend": "kairos"}))
    assert set(passed) - {"num_predicted_frames"} == {f.name for f in fields(KairosOptions)}
    kairos_only = {s.name for s in SCHEMA if s.description.startswith("kairos backend")}
    assert kairos_only <= {f.name for f in fields(KairosOptions)}, kairos_only - {f.name for f in fields(KairosOptions)}
