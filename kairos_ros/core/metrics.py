"""Evaluation metrics: PSNR, SSIM, action errors per horizon step and per slot."""
from __future__ import annotations

import numpy as np

from kairos_ros.core.diagnostics import latency_percentiles  # noqa: F401  (re-exported for evaluators)


def psnr(a: np.ndarray, b: np.ndarray, max_val: float = 255.0) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else float(10 * np.log10(max_val * max_val / mse))


def _gauss_kernel(size: int) -> np.ndarray:
    coords = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-coords ** 2 / (2 * 1.5 ** 2))
    return kernel / kernel.sum()


def _gauss_filter_numpy(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering over the first two axes of (H, W, C) data."""
    k = kernel.size
    rows = sum(kernel[i] * img[i:img.shape[0] - k + 1 + i] for i in range(k))
    return sum(kernel[i] * rows[:, i:rows.shape[1] - k + 1 + i] for i in range(k))


def _ssim_map(mx, my, exx, eyy, exy):
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim(a: np.ndarray, b: np.ndarray, max_val: float = 255.0) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03), averaged over channels."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {a.shape} and {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    kernel = _gauss_kernel(min(11, a.shape[0], a.shape[1]))
    try:  # torch when installed (faster); core itself must not need it
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        return _ssim_torch(torch, a, b, float(max_val), kernel)
    x = np.asarray(a, dtype=np.float64) / max_val  # reference path: float64 throughout
    y = np.asarray(b, dtype=np.float64) / max_val
    moments = [_gauss_filter_numpy(m, kernel) for m in (x, y, x * x, y * y, x * y)]
    return float(_ssim_map(*moments).mean())


def _as_tensor(torch, arr: np.ndarray):
    if arr.dtype not in (np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64) or not arr.dtype.isnative:
        arr = arr.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr))  # torch refuses negative strides


def _shift_filter(planes, taps: list[float]):
    """'valid' separable filtering of (P, H, W) planes as shifted in-place adds (one pass over memory
    per tap); on the CPU as fast as a depthwise conv2d on one thread and faster on several."""
    k = len(taps)
    h, w = planes.shape[1] - k + 1, planes.shape[2] - k + 1
    rows = planes[:, 0:h] * taps[0]
    for i in range(1, k):
        rows.add_(planes[:, i:i + h], alpha=taps[i])
    out = rows[:, :, 0:w] * taps[0]
    for i in range(1, k):
        out.add_(rows[:, :, i:i + w], alpha=taps[i])
    return out  # (P, h, w)


def _ssim_torch(torch, a: np.ndarray, b: np.ndarray, max_val: float, kernel: np.ndarray) -> float:
    """float32 SSIM, within ~1e-8 of the float64 reference on [0, 255] frames.

    Each channel is centred on its mean before the moments are filtered: variances come from
    E[x'^2] - E[x']^2 of small numbers, free of the cancellation that cost float32 ~1e-5 on bright,
    flat images. Only 4 moments per channel are filtered (sxx and syy appear only as a sum).
    """
    height, width, c = a.shape
    buf = torch.empty((4, c, height, width), dtype=torch.float32)  # x', y', x'^2 + y'^2, x'y'
    xs, ys = buf[0], buf[1]
    xs.copy_(_as_tensor(torch, a).permute(2, 0, 1)).div_(max_val)
    ys.copy_(_as_tensor(torch, b).permute(2, 0, 1)).div_(max_val)
    cx, cy = xs.mean(dim=(1, 2), keepdim=True), ys.mean(dim=(1, 2), keepdim=True)  # (C, 1, 1)
    xs.sub_(cx)
    ys.sub_(cy)
    torch.mul(xs, xs, out=buf[2]).addcmul_(ys, ys)
    torch.mul(xs, ys, out=buf[3])
    taps = [float(t) for t in kernel.astype(np.float32)]
    mx, my, ess, exy = _shift_filter(buf.view(4 * c, height, width), taps).unflatten(0, (4, c)).unbind(0)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    sxy = exy.sub_(mx * my)  # covariance (shift-invariant)
    var_sum = ess.sub_(mx.square().addcmul_(my, my))  # sxx + syy; equal to 2 sxy bit for bit when a == b
    mx.add_(cx)
    my.add_(cy)
    num = (mx * my).mul_(2).add_(c1).mul_(sxy.mul_(2).add_(c2))
    den = mx.square_().addcmul_(my, my).add_(c1).mul_(var_sum.add_(c2))
    return float(num.div_(den).mean(dtype=torch.float64))


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
