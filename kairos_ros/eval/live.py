"""Live evaluation: score what the running graph produced while a bag was replayed into it.

The bringup's monitor node records every ActionChunk and every /joint_states message; the chunks
are scored against the robot's recorded motion exactly as the offline evaluator scores them, and
the report is written in the same format (report.py).
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from kairos_ros.core.embodiment import EmbodimentSpec, state_to_slots
from kairos_ros.core.groundtruth import interpolate_states
from kairos_ros.core.metrics import ActionErrorAccumulator, latency_percentiles
from kairos_ros.eval.report import FORMAT, write_report
from kairos_ros.lib import bagio


def live_summary(snapshot: dict, spec: EmbodimentSpec, meta: dict) -> dict:
    """Report summary (report.py layout, mode 'live') from a MonitorNode.snapshot()."""
    chunks = snapshot["chunks"]
    acc = ActionErrorAccumulator(list(spec.slot_names))
    states_t, states_q = snapshot["states_t"], snapshot["states_q"]
    order = np.argsort(states_t, kind="stable")
    states_t, states_q = states_t[order], states_q[order]
    if len(states_t) >= 2:
        # A looping bag replays old stamps: keep the first pass so interpolation sees one timeline.
        keep = np.concatenate([[True], np.diff(states_t) > 0])
        states_t, states_q = states_t[keep], states_q[keep]
    step_period = chunks[0].step_period if chunks else spec.default_step_period
    for chunk in chunks:
        values = np.asarray(chunk.values, dtype=np.float64)
        times = chunk.stamp + (np.arange(chunk.horizon) + 1) * chunk.step_period
        if len(states_t) >= 2:
            states, valid = interpolate_states(states_t, states_q, times)
        else:
            states, valid = np.zeros((chunk.horizon, len(spec.joint_names))), np.zeros(chunk.horizon, bool)
        truth = np.zeros_like(values)
        if np.any(valid):
            truth[valid] = state_to_slots(spec, states[valid])
        acc.add(values, truth, valid)
    actions = acc.summary()
    actions.update({"step_period": step_period, "horizon": chunks[0].horizon if chunks else 0,
                    "truth": "recorded /joint_states at stamp + (k+1) * step_period, in slot space"})
    e2e = latency_percentiles(snapshot["e2e_latency"]) if snapshot["e2e_latency"] else snapshot["e2e"]
    status = snapshot.get("status") or {}
    return {
        "format": FORMAT,
        "title": f"{meta.get('bag_name', 'live')} / {meta.get('backend', '')} (live through the graph)",
        "mode": "live",
        "config": {"backend": meta.get("backend"), "model": status.get("model"), "embodiment": spec.name,
                   "horizon": actions["horizon"], "step_period": step_period, "rate": meta.get("rate")},
        "bag": {"path": meta.get("bag"), "name": meta.get("bag_name")},
        "counts": {**snapshot["counts"], "dropped_predictions": status.get("dropped", 0),
                   **({"adapter": snapshot["adapter"]} if snapshot.get("adapter") else {})},
        "actions": actions,
        "latency": {**e2e, "samples": list(snapshot["e2e_latency"]),
                    "what": "Observation arrival -> arrival of the JointTrajectory made from it, at the monitor (wall clock)"},
        "inference": {k: status.get(k) for k in ("latency_p50", "latency_p90", "latency_p99")},
    }


def write_live_report(snapshot: dict, spec: EmbodimentSpec, args, out_dir: str):
    bag = os.path.abspath(args.bag)
    meta = {"bag": bag, "bag_name": os.path.basename(bag.rstrip("/")), "backend": args.backend, "rate": args.rate}
    summary = live_summary(snapshot, spec, meta)
    reader = bagio.open_reader(bag)
    try:
        summary["bag"] = bagio.bag_info(bag, reader)
    finally:
        reader.close()
    return write_report(summary, out_dir)


def write_sim_report(snapshot: dict, sim_state: dict, episode_start, video: list, args, out_dir: str) -> str:
    """A closed-loop episode of kairos-bringup --sim: sim_report.json / .md, and episode.gif (the first
    camera beside the newest predicted frame) when frames were recorded. Returns the .md path."""
    os.makedirs(out_dir, exist_ok=True)
    status = snapshot.get("status") or {}
    e2e = snapshot.get("e2e") or {}
    took = (sim_state["success_at"] - episode_start) if sim_state.get("success") and episode_start else None
    report = {"format": "kairos-sim-episode/1", "task": args.sim, "seed": args.seed, "backend": args.backend,
              "model": status.get("model", ""), "real_time_factor": args.real_time_factor,
              "success": bool(sim_state.get("success")), "time_to_success": took,
              "max_reward": sim_state.get("max_reward", 0.0), "counts": snapshot.get("counts", {}),
              "adapter": snapshot.get("adapter", {}),
              "inference_latency": {k: status.get(k) for k in ("latency_p50", "latency_p90", "latency_p99")},
              "obs_to_trajectory": {k: e2e.get(k) for k in ("p50", "p99", "count")}}
    gif = ""
    if video:
        gif = os.path.join(out_dir, "episode.gif")
        frames = [Image.fromarray(f) for f in video]
        frames[0].save(gif, save_all=True, append_images=frames[1:], duration=200, loop=0)
        report["video"] = "episode.gif"
    with open(os.path.join(out_dir, "sim_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    refusals = {k: v for k, v in report["adapter"].items() if k.startswith("refused_") and k != "refused_chunk" and v}
    lat = report["inference_latency"]
    lines = [f"# Closed-loop episode: {args.sim}, seed {args.seed}", "",
             f"- backend `{args.backend}` ({report['model']}), real-time factor {args.real_time_factor}",
             f"- outcome: **{'success' if report['success'] else 'no success'}**"
             + (f" after {took:.2f} s" if took is not None else "") + f", max reward {report['max_reward']:g}",
             f"- observations {report['counts'].get('observations', 0)}, chunks {report['counts'].get('predictions', 0)}, "
             f"trajectories {report['counts'].get('trajectories', 0)}",
             f"- adapter refusals: {report['adapter'].get('refused_chunk', 0)} chunks"
             + (" (" + ", ".join(f"{k[len('refused_'):]} {v}" for k, v in sorted(refusals.items())) + ")"
                if refusals else ""),
             "- inference latency p50 / p99: " + (f"{lat['latency_p50'] * 1e3:.1f} / {lat['latency_p99'] * 1e3:.1f} ms"
                                                   if lat.get("latency_p50") is not None else "-")]
    if gif:
        lines += ["", "![episode: camera, newest predicted frame](episode.gif)"]
    path = os.path.join(out_dir, "sim_report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
