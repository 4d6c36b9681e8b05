"""Pairs predicted frames with the real future, streaming: memory stays bounded by the horizon.

A predicted frame standing for time T is compared with the real composed observation whose stamp
is closest to T, provided that it lies within `tolerance` (half a camera period). Observations
arrive in increasing stamp order, so a frame's best match is final once stamps pass T + tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class _Pending:
    index: int  # position of the frame within its prediction
    offset: float  # seconds after the observation it was predicted from
    target: float  # absolute time the frame stands for
    frame: np.ndarray
    best_gap: float = float("inf")
    best: np.ndarray | None = None


@dataclass
class FrameScores:
    """Per frame index: sums of PSNR, SSIM and offsets, and how many pairs went in."""

    psnr: dict[int, float] = field(default_factory=dict)
    ssim: dict[int, float] = field(default_factory=dict)
    offset: dict[int, float] = field(default_factory=dict)
    count: dict[int, int] = field(default_factory=dict)
    unmatched: int = 0

    def add(self, index: int, offset: float, psnr: float, ssim: float) -> None:
        self.psnr[index] = self.psnr.get(index, 0.0) + psnr
        self.ssim[index] = self.ssim.get(index, 0.0) + ssim
        self.offset[index] = self.offset.get(index, 0.0) + offset
        self.count[index] = self.count.get(index, 0) + 1

    def summary(self) -> dict:
        idx = sorted(self.count)
        n = [self.count[i] for i in idx]
        total = sum(n)
        return {
            "offsets": [round(self.offset[i] / self.count[i], 6) for i in idx],
            "psnr": [self.psnr[i] / self.count[i] for i in idx],
            "ssim": [self.ssim[i] / self.count[i] for i in idx],
            "count": n,
            "unmatched": self.unmatched,
            "overall": {"psnr": sum(self.psnr.values()) / total if total else None,
                        "ssim": sum(self.ssim.values()) / total if total else None,
                        "count": total},
        }


class FrameMatcher:
    def __init__(self, tolerance: float, score: Callable[[np.ndarray, np.ndarray], tuple[float, float]]):
        """score(predicted, real) -> (psnr, ssim), both frames (H, W, 3) uint8 of the same size."""
        self.tolerance = tolerance
        self.score = score
        self.pending: list[_Pending] = []
        self.scores = FrameScores()

    def expect(self, index: int, offset: float, target: float, frame: np.ndarray) -> None:
        self.pending.append(_Pending(index, offset, target, np.asarray(frame)))

    def observe(self, stamp: float, composed: np.ndarray) -> None:
        """A real composed observation: offer it to every pending frame, settle the passed ones."""
        keep = []
        for item in self.pending:
            gap = abs(stamp - item.target)
            if gap < item.best_gap:
                item.best_gap, item.best = gap, composed
            if stamp > item.target + self.tolerance:
                self._settle(item)
            else:
                keep.append(item)
        self.pending = keep

    def flush(self) -> None:
        """Settle everything (end of the bag, or a time jump that ends this stretch of time)."""
        for item in self.pending:
            self._settle(item)
        self.pending = []

    def _settle(self, item: _Pending) -> None:
        if item.best is None or item.best_gap > self.tolerance:
            self.scores.unmatched += 1
            return
        psnr, ssim = self.score(item.frame, item.best)
        self.scores.add(item.index, item.offset, psnr, ssim)
