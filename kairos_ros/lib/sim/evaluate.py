"""Closed-loop evaluation over many seeded episodes: success rate with a 95% interval, time to
success, the adapter's refusals per gate, the controller's rejections, inference latency; a
report as JSON, Markdown and a plot, an animated GIF per episode on request.

Episodes are appended to `episodes.jsonl` in the output folder as they finish, so an interrupted
50-episode run continues where it stopped (`resume=True`).
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.sim.closed_loop import CLOCK_OFFSET, FastEpisode, load_profile, make_world_backend
from kairos_ros.lib.sim.oracle import ExpertReplayBackend
from kairos_ros.lib.sim.registry import make_expert, make_task
from kairos_ros.lib.sim.registry import make_task as _make

EXPERT = "expert_replay"  # the privileged reference (lib/sim/oracle.py), not a model


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate k/n ((0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(episodes: list[dict]) -> dict:
    n = len(episodes)
    k = sum(1 for e in episodes if e["success"])
    lo, hi = wilson_interval(k, n)
    times = [e["time_to_success"] for e in episodes if e["success"]]
    lat = [x for e in episodes for x in e["latencies"]]
    refusals: dict = {}
    for e in episodes:
        for gate, count in e["refusals"].items():
            refusals[gate] = refusals.get(gate, 0) + count
    pct = (lambda q: float(np.percentile(lat, q))) if lat else (lambda q: None)
    return {"episodes": n, "successes": k, "success_rate": k / n if n else 0.0, "ci95": [lo, hi],
            "mean_time_to_success": float(np.mean(times)) if times else None,
            "chunks": sum(e["chunks"] for e in episodes), "trajectories": sum(e["trajectories"] for e in episodes),
            "refusals": refusals, "rejected_by_controller": sum(e["rejected_by_controller"] for e in episodes),
            "latency_p50": pct(50), "latency_p99": pct(99), "mean_max_reward": float(np.mean(
                [e["max_reward"] for e in episodes])) if episodes else 0.0}


def _save_gif(path: Path, frames: list) -> None:
    if frames:
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def run_fast(task_name: str, backends: list[str], episodes: int, seed: int, out: Path, profile_path: str,
             video: bool = False, resume: bool = False, log=print, world_overrides: dict | None = None,
             max_duration: float = 0.0) -> dict:
    """Evaluate each backend on seeds seed .. seed + episodes - 1 in fast mode; returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    task = make_task(task_name)
    spec = load_embodiment(task.info.embodiment)
    report = {"task": task_name, "mode": "fast", "profile": str(profile_path), "seeds": [seed, seed + episodes - 1],
              "backends": {}, "machine": _machine()}
    try:
        for name in backends:
            model = "hold" if name == EXPERT else name  # the profile's world-model settings, validated
            profile = load_profile(profile_path, model, spec.name, {"num_predicted_frames": 0, **(world_overrides or {})})
            if name == EXPERT:
                backend = ExpertReplayBackend(spec, task, make_expert(task_name), CLOCK_OFFSET)
            else:
                backend = make_world_backend(profile, spec)
            runner = FastEpisode(task, backend, profile, video_camera=task.info.cameras[0] if video else None,
                                 max_duration=max_duration)

            def one(s: int) -> dict:
                start = time.perf_counter()
                r = runner.run(s)
                row = asdict(r)
                frames = row.pop("frames")
                row["wall_seconds"] = time.perf_counter() - start
                if video:
                    _save_gif(out / f"{name}_seed{s}.gif", frames)
                log(f"{name} seed {s}: {'success' if r.success else 'failure'} (reward {r.max_reward:g}, "
                    f"{r.trajectories}/{r.chunks} chunks executed, {row['wall_seconds']:.1f} s)")
                return row

            results = _episodes(out / f"episodes_{name}.jsonl", range(seed, seed + episodes), resume, one)
            report["backends"][name] = summarize(results)
    finally:
        task.close()
    write_report(out, report)
    return report


def run_live(task_name: str, backends: list[str], episodes: int, seed: int, out: Path, profile_path: str,
             real_time_factor: float = 0.5, video: bool = False, resume: bool = False, log=print,
             timeout: float = 600.0) -> dict:
    """Evaluate each backend through the whole graph (kairos-bringup --sim: every node its own
    process over DDS, the adapter armed, sim time at `real_time_factor`), one bringup per episode."""
    out.mkdir(parents=True, exist_ok=True)
    probe = _make(task_name)
    embodiment = probe.info.embodiment
    probe.close()
    report = {"task": task_name, "mode": "live", "profile": str(profile_path), "seeds": [seed, seed + episodes - 1],
              "real_time_factor": real_time_factor, "backends": {}, "machine": _machine()}
    for name in backends:

        def one(s: int) -> dict:
            run_dir = out / f"{name}_seed{s}"
            cmd = [sys.executable, "-m", "kairos_ros.bringup.cli", "--embodiment", embodiment, "--backend", name,
                   "--config", str(profile_path), "--sim", task_name, "--seed", str(s), "--real-time-factor",
                   str(real_time_factor), "--report-dir", str(run_dir), "--log-dir", str(run_dir / "logs"),
                   "--visualize", "false", "--video", "true" if video else "false", "--domain", "auto"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            report_file = run_dir / "sim_report.json"
            if proc.returncode != 0 or not report_file.exists():
                raise RuntimeError(f"live episode {name} seed {s} failed (exit {proc.returncode}): "
                                   f"{proc.stderr.strip()[-2000:]}")
            ep = json.loads(report_file.read_text())
            lat = ep.get("inference_latency") or {}
            adapter = ep.get("adapter") or {}
            row = {"seed": s, "success": bool(ep["success"]), "time_to_success": ep["time_to_success"],
                   "duration": None, "max_reward": ep["max_reward"], "chunks": ep["counts"].get("predictions", 0),
                   "trajectories": ep["counts"].get("trajectories", 0),
                   "refusals": {k[len("refused_"):]: v for k, v in adapter.items() if k.startswith("refused_") and v
                                and k != "refused_chunk"},
                   "rejected_by_controller": 0,
                   "latencies": [x for x in (lat.get("latency_p50"),) if x is not None],
                   "wall_seconds": time.perf_counter() - start}
            log(f"{name} seed {s} (live): {'success' if row['success'] else 'failure'} (reward {row['max_reward']:g}, "
                f"{row['trajectories']} trajectories, {row['wall_seconds']:.1f} s)")
            return row

        results = _episodes(out / f"episodes_{name}.jsonl", range(seed, seed + episodes), resume, one)
        report["backends"][name] = summarize(results)
    write_report(out, report)
    return report


def _episodes(log_file: Path, seeds, resume: bool, run_one) -> list[dict]:
    """Rows for `seeds`: kept from log_file when resuming, else run_one(seed) and appended to it."""
    done = _load_done(log_file) if resume else {}
    if not resume and log_file.exists():
        log_file.unlink()
    rows = []
    for s in seeds:
        if s not in done:
            done[s] = run_one(s)
            with open(log_file, "a") as f:
                f.write(json.dumps(done[s]) + "\n")
        rows.append(done[s])
    return rows


def _load_done(path: Path) -> dict:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[int(row["seed"])] = row
    return done


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2))
    live = report["mode"] == "live"
    # fast mode counts the chunks the loop executed; live mode can only count what the adapter
    # published, and that includes the holds it sends on its own (at a start, on a stop)
    executed = "trajectories published / chunks" if live else "chunks executed"
    lines = [f"# Closed-loop evaluation: {report['task']} ({report['mode']} mode)", "",
             f"Seeds {report['seeds'][0]}-{report['seeds'][1]}, profile `{report['profile']}`.", "",
             f"| backend | success | rate | 95% interval | mean time to success | {executed} | adapter refusals "
             "| controller rejections | inference p50 / p99 |", "|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["backends"].items():
        ref = ", ".join(f"{g} {c}" for g, c in sorted(s["refusals"].items())) or "none"
        tts = f"{s['mean_time_to_success']:.2f} s" if s["mean_time_to_success"] is not None else "-"
        lat = (f"{s['latency_p50'] * 1e3:.1f} / {s['latency_p99'] * 1e3:.1f} ms" if s["latency_p50"] is not None
               else "-")
        lines.append(f"| {name} | {s['successes']}/{s['episodes']} | {s['success_rate']:.0%} | "
                     f"{s['ci95'][0]:.0%}-{s['ci95'][1]:.0%} | {tts} | {s['trajectories']}/{s['chunks']} | {ref} | "
                     f"{s['rejected_by_controller']} | {lat} |")
    if live:
        lines += ["", "Live mode: the adapter's trajectories include the holds it publishes on its own, so they "
                  "are not a count of executed chunks; its refusals per gate are."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(out / "success.png", report)


def _plot(path: Path, report: dict) -> None:
    # matplotlib only here, where success.png is drawn, with its headless backend chosen before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["backends"])
    if not names:
        return
    rates = [report["backends"][n]["success_rate"] for n in names]
    lo = [r - report["backends"][n]["ci95"][0] for n, r in zip(names, rates)]
    hi = [report["backends"][n]["ci95"][1] - r for n, r in zip(names, rates)]
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(names), 3))
    ax.bar(names, rates, yerr=[lo, hi], capsize=4, color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("success rate (95% interval)")
    ax.set_title(f"{report['task']}, {report['mode']} mode")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
