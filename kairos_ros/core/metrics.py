"""Evaluation metrics: PSNR, SSIM, action errors per horizon step and per slot."""
from __future__ import annotations

import numpy as np

from kairos_ros.core.diagnostics import latency_percentiles  # noqa: F401  (re-exported for evaluators)


def psnr(a: np.ndarray, b: np.ndarray, max_val: float = 255.0) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else float(10 * np.log10(max_val * max_val / mse))


def _gauss_filter_numpy(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering over the first two axes of (H, W, C) data."""
    k = kernel.size
    rows = sum(kernel[i] * img[i:img.shape[0] - k + 1 + i] for i in range(k))
    return sum(kernel[i] * rows[:, i:rows.shape[1] - k + 1 + i] for i in range(k))


def _local_moments(x: np.ndarray, y: np.ndarray, kernel: np.ndarray):
    """Gaussian-weighted mx, my, E[x^2], E[y^2], E[xy] of (H, W, C) images (numpy fallback)."""
    return [_gauss_filter_numpy(m, kernel) for m in (x, y, x * x, y * y, x * y)]


def ssim(a: np.ndarray, b: np.ndarray, max_val: float = 255.0) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03), averaged over channels."""
    x = np.asarray(a, dtype=np.float32) / np.float32(max_val)
    y = np.asarray(b, dtype=np.float32) / np.float32(max_val)
    if x.shape != y.shape:
        raise ValueError(f"ssim needs equal shapes, got {x.shape} and {y.shape}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    size = min(11, x.shape[0], x.shape[1])
    coords = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-coords ** 2 / (2 * 1.5 ** 2))
    kernel /= kernel.sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:  # float32 on [0, 1] data: ~1e-6 from float64, several times faster
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32))
        ty = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1), dtype=np.float32))
        mx, my, exx, eyy, exy = _local_moments_torch(tx, ty, kernel)
        sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
        smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        return float(smap.double().mean())
    mx, my, exx, eyy, exy = _local_moments(x, y, kernel)
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    smap = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(smap.mean())


def _local_moments_torch(x, y, kernel):
    import torch
    import torch.nn.functional as functional

    c = x.shape[0]
    stack = torch.cat([x, y, x * x, y * y, x * y])[None]  # (1, 5C, H, W)
    kt = torch.from_numpy(kernel.astype(np.float32))
    out = functional.conv2d(stack, kt.view(1, 1, -1, 1).expand(5 * c, 1, -1, 1), groups=5 * c)
    out = functional.conv2d(out, kt.view(1, 1, 1, -1).expand(5 * c, 1, 1, -1), groups=5 * c)
    return out[0].split(c)


def action_errors(pred: np.ndarray, truth: np.ndarray) -> dict:
    err = np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64))
    return {"mae_per_step": err.mean(axis=1), "mae_per_dim": err.mean(axis=0), "rmse": float(np.sqrt(np.mean(err ** 2)))}


class ActionErrorAccumulator:
    """Absolute and squared errors per horizon step and per slot over many chunks."""

    def __init__(self, slot_names: list[str]):
        self.slot_names = list(slot_names)
        d = len(self.slot_names)
        self.step_abs = np.zeros(0)
        self.step_sq = np.zeros(0)
        self.step_n = np.zeros(0, dtype=np.int64)
        self.slot_abs, self.slot_sq, self.slot_n = np.zeros(d), np.zeros(d), np.zeros(d, dtype=np.int64)
        self.chunks = 0

    def add(self, pred: np.ndarray, truth: np.ndarray, valid=None) -> None:
        """pred, truth (H, D); rows where `valid` is False (or truth is NaN) are not scored."""
        p = np.asarray(pred, dtype=np.float64)
        t = np.asarray(truth, dtype=np.float64)
        if p.shape != t.shape or p.ndim != 2 or p.shape[1] != len(self.slot_names):
            raise ValueError(f"pred {p.shape} and truth {t.shape} must both be (H, {len(self.slot_names)})")
        ok = np.all(np.isfinite(t), axis=1) if valid is None else (np.asarray(valid, bool) & np.all(np.isfinite(t), axis=1))
        h = p.shape[0]
        if h > self.step_abs.size:
            grow = h - self.step_abs.size
            self.step_abs = np.concatenate([self.step_abs, np.zeros(grow)])
            self.step_sq = np.concatenate([self.step_sq, np.zeros(grow)])
            self.step_n = np.concatenate([self.step_n, np.zeros(grow, dtype=np.int64)])
        err = np.abs(p - np.where(np.isfinite(t), t, 0.0))
        err[~ok] = 0.0
        d = p.shape[1]
        self.step_abs[:h] += err.sum(axis=1)
        self.step_sq[:h] += (err ** 2).sum(axis=1)
        self.step_n[:h] += ok * d
        self.slot_abs += err.sum(axis=0)
        self.slot_sq += (err ** 2).sum(axis=0)
        self.slot_n += int(ok.sum())
        self.chunks += 1

    def summary(self) -> dict:
        def stats(total_abs, total_sq, n):
            n = np.asarray(n)
            mae = [float(a / c) if c else None for a, c in zip(np.atleast_1d(total_abs), np.atleast_1d(n))]
            rmse = [float(np.sqrt(s / c)) if c else None for s, c in zip(np.atleast_1d(total_sq), np.atleast_1d(n))]
            return {"mae": mae, "rmse": rmse, "count": [int(c) for c in np.atleast_1d(n)]}
        n_all = int(self.slot_n.sum())
        overall = {"mae": float(self.slot_abs.sum() / n_all) if n_all else None,
                   "rmse": float(np.sqrt(self.slot_sq.sum() / n_all)) if n_all else None, "count": n_all}
        return {"slot_names": self.slot_names, "chunks": self.chunks,
                "per_step": stats(self.step_abs, self.step_sq, self.step_n),
                "per_slot": stats(self.slot_abs, self.slot_sq, self.slot_n), "overall": overall}
