"""Unit tests for kairos_ros.core.metrics: PSNR, SSIM (against float64 references), action errors."""
import math
import sys

import numpy as np
import pytest

from kairos_ros.core import metrics
from kairos_ros.core.metrics import ActionErrorAccumulator, action_errors, psnr, ssim

RNG = np.random.default_rng(42)
C1, C2 = 0.01 ** 2, 0.03 ** 2


def _gauss(size):
    c = np.arange(size) - (size - 1) / 2
    g = np.exp(-c ** 2 / (2 * 1.5 ** 2))
    return g / g.sum()


def ssim_loops(a, b, max_val=255.0):
    """Straightforward SSIM: every 11x11 window, weighted by the 2-D Gaussian, in float64."""
    x = np.asarray(a, np.float64) / max_val
    y = np.asarray(b, np.float64) / max_val
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    size = min(11, x.shape[0], x.shape[1])
    w = np.outer(_gauss(size), _gauss(size))
    vals = []
    for c in range(x.shape[2]):
        for i in range(x.shape[0] - size + 1):
            for j in range(x.shape[1] - size + 1):
                px, py = x[i:i + size, j:j + size, c], y[i:i + size, j:j + size, c]
                mx, my = (w * px).sum(), (w * py).sum()
                sxx = (w * px * px).sum() - mx * mx
                syy = (w * py * py).sum() - my * my
                sxy = (w * px * py).sum() - mx * my
                vals.append((2 * mx * my + C1) * (2 * sxy + C2) / ((mx * mx + my * my + C1) * (sxx + syy + C2)))
    return float(np.mean(vals))


def ssim_separable64(a, b, max_val=255.0):
    """The same definition, vectorised: separable 'valid' Gaussian as shifted sums in float64."""
    x = np.asarray(a, np.float64) / max_val
    y = np.asarray(b, np.float64) / max_val
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    size = min(11, x.shape[0], x.shape[1])
    g = _gauss(size)

    def filt(m):
        h, w = m.shape[0] - size + 1, m.shape[1] - size + 1
        rows = sum(g[k] * m[k:k + h] for k in range(size))
        return sum(g[k] * rows[:, k:k + w] for k in range(size))

    mx, my, exx, eyy, exy = (filt(m) for m in (x, y, x * x, y * y, x * y))
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    return float((((2 * mx * my + C1) * (2 * sxy + C2)) / ((mx * mx + my * my + C1) * (sxx + syy + C2))).mean())


def _frame_pairs(h=384, w=320):
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = 127 + 100 * np.sin(xx / 37.0)[..., None] * np.cos(yy / 23.0)[..., None] * np.ones(3)
    noise = RNG.normal(0, 6, smooth.shape)
    return {
        "random": (RNG.integers(0, 256, (h, w, 3)), RNG.integers(0, 256, (h, w, 3))),
        "smooth_vs_noisy": (smooth, smooth + noise),
        # nearly flat and bright: float32 variances by E[x^2] - E[x]^2 cancel badly here
        "flat_bright": (np.full((h, w, 3), 250), 250 + RNG.integers(-1, 2, (h, w, 3))),
        "dark_shifted": (smooth * 0.1, smooth * 0.1 + 3),
    }


# -- PSNR ----------------------------------------------------------------------------------------

def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255 ** 2))  # MSE 1
    b = a.copy()
    b[0, 0, 0] = 255  # MSE = 255^2 / 48
    assert psnr(a, b) == pytest.approx(10 * math.log10(48))
    assert psnr(np.zeros(8), np.full(8, 0.5), max_val=1.0) == pytest.approx(10 * math.log10(4))


def test_psnr_no_uint8_wraparound():
    a = np.full((2, 2), 250, np.uint8)
    b = np.full((2, 2), 5, np.uint8)  # a - b in uint8 would wrap
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 245 ** 2))


# -- SSIM ----------------------------------------------------------------------------------------

def test_reference_implementations_agree():
    a, b = RNG.integers(0, 256, (2, 16, 19, 3))
    assert ssim_separable64(a, b) == pytest.approx(ssim_loops(a, b), abs=1e-12)


@pytest.mark.parametrize("shape", [(16, 19, 3), (13, 12), (7, 9, 3), (11, 30, 1)])
def test_ssim_matches_straightforward_reference_on_small_images(shape):
    a = RNG.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + RNG.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(ssim_loops(a, b), abs=1e-6)


@pytest.mark.parametrize("case", ["random", "smooth_vs_noisy", "flat_bright", "dark_shifted"])
def test_ssim_matches_float64_reference_on_full_frames(case):
    a, b = (np.clip(v, 0, 255).astype(np.uint8) for v in _frame_pairs()[case])
    assert abs(ssim(a, b) - ssim_separable64(a, b)) < 1e-6


def test_ssim_identical_is_exactly_one():
    for img in (RNG.integers(0, 256, (40, 50, 3)).astype(np.uint8), np.full((20, 20, 3), 7, np.uint8),
                RNG.integers(0, 256, (12, 12)).astype(np.uint8)):
        assert ssim(img, img) == 1.0
        assert ssim(img, img.copy()) == 1.0


def test_ssim_decreases_with_noise():
    yy, xx = np.mgrid[0:64, 0:64]
    img = (127 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[..., None].repeat(3, axis=2)
    scores = [ssim(img.astype(np.uint8), np.clip(img + RNG.normal(0, s, img.shape), 0, 255).astype(np.uint8))
              for s in (2, 10, 40)]
    assert 1.0 > scores[0] > scores[1] > scores[2] > 0.0
    assert ssim(np.zeros((32, 32, 3)), np.full((32, 32, 3), 255.0)) < 0.01


def test_ssim_is_symmetric_and_per_channel():
    a, b = RNG.integers(0, 256, (2, 24, 24, 3)).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-7)
    per_channel = np.mean([ssim(a[:, :, c], b[:, :, c]) for c in range(3)])
    assert ssim(a, b) == pytest.approx(per_channel, abs=1e-7)


def test_ssim_input_types():
    a = RNG.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    b = np.clip(a + RNG.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ref = ssim_separable64(a, b)
    assert ssim(a / 255.0, b / 255.0, max_val=1.0) == pytest.approx(ref, abs=1e-6)
    assert ssim(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257, max_val=65535) == pytest.approx(ref, abs=1e-6)
    assert ssim(a.astype(">f8"), b.astype(">f8")) == pytest.approx(ref, abs=1e-6)  # non-native byte order
    assert ssim(a[:, ::-1], b[:, ::-1]) == pytest.approx(ssim_separable64(a[:, ::-1], b[:, ::-1]), abs=1e-6)
    assert ssim(a.tolist(), b.tolist()) == pytest.approx(ref, abs=1e-6)


def test_ssim_shape_mismatch():
    with pytest.raises(ValueError, match=r"ssim needs equal shapes, got \(8, 8, 3\) and \(8, 9, 3\)"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))


def test_ssim_numpy_fallback_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    a, b = (np.clip(v, 0, 255).astype(np.uint8)[:48, :40] for v in _frame_pairs()["smooth_vs_noisy"])
    assert ssim(a, b) == pytest.approx(ssim_separable64(a, b), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


# -- action errors -------------------------------------------------------------------------------

def test_action_errors():
    pred = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]])
    truth = np.array([[1.0, 1.0], [1.0, 4.0], [0.0, 3.0]])
    out = action_errors(pred, truth)
    np.testing.assert_allclose(out["mae_per_step"], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(out["mae_per_dim"], [2 / 3, 4 / 3])
    assert out["rmse"] == pytest.approx(math.sqrt((1 + 4 + 9) / 6))


def _reference_summary(entries, d):
    """entries: (step, slot, abs error) of every scored value."""
    def stats(key, n):
        mae, rmse, count = [], [], []
        for i in range(n):
            errs = [e for e_key, e in key if e_key == i]
            count.append(len(errs))
            mae.append(float(np.mean(errs)) if errs else None)
            rmse.append(float(np.sqrt(np.mean(np.square(errs)))) if errs else None)
        return mae, rmse, count

    steps = max([s for s, _, _ in entries], default=-1) + 1
    return (stats([(s, e) for s, _, e in entries], steps), stats([(k, e) for _, k, e in entries], d),
            float(np.mean([e for *_, e in entries])) if entries else None)


def _check_stats(got, want):
    mae, rmse, count = want
    assert got["count"] == count
    for g, w in ((got["mae"], mae), (got["rmse"], rmse)):
        assert len(g) == len(w)
        for gv, wv in zip(g, w):
            assert (gv is None and wv is None) or gv == pytest.approx(wv)


def test_accumulator_valid_masks_nan_truth_and_varying_horizons():
    slots = ["a", "b", "c"]
    acc = ActionErrorAccumulator(slots)
    entries = []
    rng = np.random.default_rng(5)
    for horizon, use_mask in ((4, False), (7, True), (2, True), (5, False)):
        pred = rng.normal(size=(horizon, 3))
        truth = rng.normal(size=(horizon, 3))
        valid = rng.random(horizon) > 0.3 if use_mask else None
        if horizon == 5:
            truth[1, 2] = np.nan  # a row with any NaN in the truth is not scored
        acc.add(pred, truth, valid)
        for s in range(horizon):
            if (valid is not None and not valid[s]) or not np.all(np.isfinite(truth[s])):
                continue
            entries += [(s, k, abs(pred[s, k] - truth[s, k])) for k in range(3)]
    summary = acc.summary()
    assert summary["slot_names"] == slots and summary["chunks"] == 4
    steps, per_slot, overall_mae = _reference_summary(entries, 3)
    assert len(summary["per_step"]["count"]) == 7  # grows to the longest horizon
    _check_stats(summary["per_step"], steps)
    _check_stats(summary["per_slot"], per_slot)
    assert summary["overall"]["count"] == len(entries)
    assert summary["overall"]["mae"] == pytest.approx(overall_mae)
    assert summary["overall"]["rmse"] == pytest.approx(math.sqrt(np.mean([e * e for *_, e in entries])))


def test_accumulator_exact_small_case():
    acc = ActionErrorAccumulator(["x", "y"])
    acc.add([[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], valid=[True, False])
    acc.add([[0.0, 3.0]], [[0.0, 0.0]])
    s = acc.summary()
    assert s["per_step"] == {"mae": [1.25, None], "rmse": [pytest.approx(math.sqrt(11 / 4)), None], "count": [4, 0]}
    assert s["per_slot"]["mae"] == [0.5, 2.0] and s["per_slot"]["count"] == [2, 2]
    assert s["overall"] == {"mae": 1.25, "rmse": pytest.approx(math.sqrt(11 / 4)), "count": 4}


def test_accumulator_empty_and_errors():
    acc = ActionErrorAccumulator(["a", "b"])
    s = acc.summary()
    assert s["chunks"] == 0 and s["overall"] == {"mae": None, "rmse": None, "count": 0}
    assert s["per_step"] == {"mae": [], "rmse": [], "count": []}
    assert s["per_slot"] == {"mae": [None, None], "rmse": [None, None], "count": [0, 0]}
    with pytest.raises(ValueError, match=r"must both be \(H, 2\)"):
        acc.add(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"must both be \(H, 2\)"):
        acc.add(np.zeros((3, 3)), np.zeros((3, 3)))
    assert acc.chunks == 0


def test_latency_percentiles_re_exported():
    assert metrics.latency_percentiles([1.0, 3.0])["mean"] == 2.0
