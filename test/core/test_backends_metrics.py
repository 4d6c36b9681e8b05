"""Baseline backends, metrics, ground truth, observation history and the perception pipeline."""
import numpy as np
import pytest

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment, slots_to_joints, state_to_slots
from kairos_ros.core.groundtruth import interpolate_states
from kairos_ros.core.image import ImageError
from kairos_ros.core.joints import JointStateError
from kairos_ros.core.metrics import ActionErrorAccumulator, psnr, ssim
from kairos_ros.core.observation import ObservationHistory
from kairos_ros.core.perception import PerceptionConfig, PerceptionPipeline
from kairos_ros.core.types import ActionChunkData, JointStateData, ObservationData

SPEC = load_embodiment("single_arm")
MID = (SPEC.lower + SPEC.upper) / 2


def obs(t, q, frame_value=0):
    js = JointStateData(t, list(SPEC.joint_names), np.asarray(q, float))
    frame = np.full((16, 16, 3), frame_value, np.uint8)
    return ObservationData(t, ["cam"], [frame], js, composed=frame)


def test_registry():
    with pytest.raises(ValueError, match="unknown backend 'magic'"):
        make_backend("magic", SPEC)
    with pytest.raises(ValueError, match="parameter 'dit_checkpoint' is empty"):
        make_backend("kairos", SPEC)
    with pytest.raises(ValueError, match="bad parameters"):
        make_backend("hold", SPEC, colour="red")


def test_hold_repeats_state_and_last_frame():
    b = make_backend("hold", SPEC, num_predicted_frames=4)
    with pytest.raises(ValueError, match="empty observation history"):
        b.predict([], 8, 0.05)
    pred = b.predict([obs(1.0, MID, 5), obs(1.1, MID + 0.01, 7)], 8, 0.05)
    assert pred.chunk.values.shape == (8, 8) and np.allclose(pred.chunk.values, state_to_slots(SPEC, MID + 0.01))
    assert pred.chunk.stamp == 1.1 and pred.chunk.backend == "hold"
    assert len(pred.frames) == 4 and all(f[0, 0, 0] == 7 for f in pred.frames)
    assert pred.frame_times == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_extrapolate_is_exact_on_linear_motion_and_clamps():
    b = make_backend("extrapolate", SPEC)
    v = np.full(8, 0.1)
    v[-1] = 0.0
    hist = [obs(t, MID + v * t) for t in (0.0, 0.1, 0.2)]
    pred = b.predict(hist, 5, 0.1)
    expected = MID + v * (0.2 + 0.1 * np.arange(1, 6))[:, None]
    assert np.allclose(slots_to_joints(SPEC, pred.chunk.values), expected, atol=1e-5)
    fast = [obs(t, MID + 50 * t) for t in (0.0, 0.1)]
    out = slots_to_joints(SPEC, b.predict(fast, 10, 0.1).chunk.values)
    assert np.all(out <= SPEC.upper + 1e-6)


def test_imagine_returns_candidate():
    b = make_backend("extrapolate", SPEC, num_predicted_frames=2)
    cand = ActionChunkData(0.0, "single_arm", list(SPEC.slot_names), np.tile(MID, (3, 1)).astype(np.float32), 0.1)
    pred = b.imagine([obs(2.0, MID)], cand)
    assert np.array_equal(pred.chunk.values, cand.values) and pred.stamp == 2.0 and len(pred.frames) == 2


def _ssim_reference(a, b):
    """Direct 2-D Gaussian-window SSIM, written independently of the separable implementation."""
    a = a.astype(float)
    b = b.astype(float)
    size, sigma = 11, 1.5
    ax = np.arange(size) - 5
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch], b[:, :, ch]
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
                mx, my = (g * px).sum(), (g * py).sum()
                sx, sy = (g * px * px).sum() - mx * mx, (g * py * py).sum() - my * my
                sxy = (g * px * py).sum() - mx * my
                vals.append(((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sx + sy + c2)))
    return float(np.mean(vals))


def test_psnr_ssim():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, a) == float("inf") and 20 < psnr(a, b) < 40
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(_ssim_reference(a, b), abs=1e-5)
    assert ssim(a, b) < 0.99


def test_accumulator_and_groundtruth():
    acc = ActionErrorAccumulator(["x", "y"])
    acc.add(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2)), valid=[True, False])
    acc.add(np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), np.ones((3, 2)))
    s = acc.summary()
    assert s["per_step"]["count"] == [4, 2, 2] and s["per_step"]["mae"][0] == pytest.approx(0.75)
    assert s["per_slot"]["mae"] == pytest.approx([0.25, 0.5]) and s["overall"]["count"] == 8
    states, valid = interpolate_states([0.0, 1.0, 2.0], [[0.0], [10.0], [20.0]], [0.5, 1.5, 2.5, -1.0])
    assert valid.tolist() == [True, True, False, False] and states[:2, 0].tolist() == [5.0, 15.0]
    states, valid = interpolate_states([1.0, 0.0], [[10.0], [0.0]], [0.25])
    assert valid[0] and states[0, 0] == pytest.approx(2.5)


def test_history_resets_on_backwards_stamp():
    h = ObservationHistory(3)
    assert not h.add(obs(1.0, MID)) and not h.add(obs(2.0, MID))
    assert not h.add(obs(2.0, MID, 9)) and len(h) == 2 and h.latest.composed[0, 0, 0] == 9
    assert h.add(obs(0.5, MID)) and len(h) == 1
    with pytest.raises(ValueError):
        ObservationHistory(0)


def test_perception_pipeline():
    p = PerceptionPipeline(PerceptionConfig(["a", "b"], list(SPEC.joint_names), layout="side_by_side",
                                            tile_width=32, tile_height=16, slop=0.01))
    frame = np.zeros((24, 40, 3), np.uint8).tobytes()
    p.add_raw_image("a", 1.0, "rgb8", 24, 40, 120, 0, frame)
    p.add_joint_state(1.0, SPEC.joint_names, MID)
    assert p.poll() is None
    p.add_raw_image("b", 1.005, "bgr8", 24, 40, 120, 0, frame)
    o = p.poll()
    assert o.composed.shape == (16, 64, 3) and o.stamp == 1.005 and o.image_stamps == [1.0, 1.005]
    with pytest.raises(ImageError):
        p.add_raw_image("a", 1.1, "yuv422", 24, 40, 120, 0, frame)
    with pytest.raises(JointStateError):
        p.add_joint_state(1.1, SPEC.joint_names[:-1], MID[:-1])
    with pytest.raises(KeyError):
        p.add_rgb("zzz", 1.1, np.zeros((4, 4, 3), np.uint8))
    p.add_joint_state(-5.0, SPEC.joint_names, MID)  # 6 s back (> jump_threshold 1 s): a loop
    assert p.take_reset() and not p.take_reset()
