"""Held-out evaluation at the end of kairos-train, through the written checkpoint files.

The three files are loaded by the kairos backend exactly as the world-model node loads them
(official temporal mode, the trained history, image size and frame period; deterministic chunks,
action_noise_scale 0), and fed observation histories built from the validation episodes: the
composed frames, the joint states the perception node synchronised with them (recorded episodes)
or the motion's (synthetic ones), and the episode's instruction. Each chunk row k is compared with
the joint states at stamp + (k+1) * step_period (slot space), as kairos-eval scores it, and so is
the `hold` baseline's chunk from the same history. The codec is scored by the PSNR of held-out
frames encoded and decoded by the written codec.
"""
from __future__ import annotations

import numpy as np
import torch

from kairos_ros.backends import make_backend
from kairos_ros.core.metrics import psnr
from kairos_ros.core.types import JointStateData, ObservationData

PSNR_CAP = 100.0


def _observations(ep, n: int, count: int, instruction: str) -> list[ObservationData]:
    start = float(ep.stamps[0]) if hasattr(ep, "stamps") else 1000.0  # synthetic: any clock
    out = []
    for i in range(n - count + 1, n + 1):
        t = float(ep.times[i])
        q = ep.observed[i] if hasattr(ep, "observed") else ep.joints([t])[0]
        js = JointStateData(start + t, list(ep.spec.joint_names), np.asarray(q, dtype=np.float64))
        out.append(ObservationData(start + t, list(ep.cfg.camera_names), [], js, instruction,
                                   composed=np.ascontiguousarray(ep.frames[i])))
    return out


def evaluate_heldout(files: dict, spec, episodes: list, record: dict, default_instruction: str,
                     samples: int = 8, flow_steps: int = 10, log=print) -> dict:
    """{"actions": {...}, "codec": {...}} over the validation episodes (empty dict without any)."""
    if not episodes:
        return {}
    h, w = episodes[0].frames.shape[1:3]
    kairos = make_backend("kairos", spec, temporal_mode="official", history_frames=record["history_frames"],
                          image_width=int(w), image_height=int(h), frame_period=record["frame_period"],
                          flow_steps=flow_steps, action_noise_scale=0.0, num_predicted_frames=0, **files)
    hold = make_backend("hold", spec)
    horizon, dt = record["horizon"], record["step_period"]
    count = max(record["history_frames"], record.get("state_velocity", 0) or 1)
    errs = {"kairos": [], "hold": []}
    used = 0
    for ep in episodes:
        last = int(np.searchsorted(ep.times, ep.times[-1] - horizon * dt, side="right")) - 1
        if last < count - 1:
            continue
        picks = np.unique(np.linspace(count - 1, last, min(samples, last - count + 2)).round().astype(int))
        instruction = getattr(ep, "instruction", "") or default_instruction
        for n in picks:
            history = _observations(ep, int(n), count, instruction)
            # what the model learnt to predict: the action series when the bags had one, else the states
            truth = ep.action_slots(ep.times[n] + dt * np.arange(1, horizon + 1)).astype(np.float64)  # (H, D)
            for name, backend in (("kairos", kairos), ("hold", hold)):
                backend.reset()
                values = np.asarray(backend.predict(history, horizon, dt).chunk.values, dtype=np.float64)
                errs[name].append(np.abs(values - truth))  # (H, D)
            used += 1
    actions = {"samples": used, "horizon": horizon, "step_period": dt,
               "truth": "action series" if any(getattr(ep, "action_stamps", None) is not None for ep in episodes)
               else "joint states"}
    for name, e in errs.items():
        if e:
            e = np.stack(e)  # (S, H, D)
            actions[f"{name}_mae"] = float(e.mean())
            actions[f"{name}_mae_step1"] = float(e[:, 0].mean())
            actions[f"{name}_mae_per_step"] = [float(x) for x in e.mean(axis=(0, 2))]
    if errs["kairos"]:
        actions["improvement_over_hold"] = 1.0 - actions["kairos_mae"] / max(actions["hold_mae"], 1e-12)
    frames = np.concatenate([ep.frames[np.unique(np.linspace(0, len(ep) - 1, min(16, len(ep))).astype(int))]
                             for ep in episodes])
    scores = []
    with torch.inference_mode():
        codec = kairos.codec
        for i in range(0, len(frames), 16):
            x = torch.from_numpy(np.ascontiguousarray(frames[i:i + 16])).permute(0, 3, 1, 2).float() / 127.5 - 1
            y = codec.decode(codec.encode(x))[:, 0]  # (B, 3, H, W)
            rgb = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
            scores += [min(psnr(a, b), PSNR_CAP) for a, b in zip(rgb, frames[i:i + 16])]
    codec_scores = {"frames": len(scores), "psnr_mean": float(np.mean(scores)), "psnr_min": float(np.min(scores))}
    log(f"held-out: action MAE {actions.get('kairos_mae', float('nan')):.4f} (hold {actions.get('hold_mae', float('nan')):.4f}) "
        f"over {used} chunks of {len(episodes)} episodes; codec PSNR {codec_scores['psnr_mean']:.2f} dB over "
        f"{len(scores)} frames")
    return {"episodes": [getattr(ep, "source", "") for ep in episodes], "actions": actions, "codec": codec_scores}
