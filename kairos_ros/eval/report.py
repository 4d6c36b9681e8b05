"""Evaluation reports: report.json (every number) and report.md (tables + PNG plots).

Shared by the offline evaluator (kairos-eval) and the live evaluator in the bringup, so both
write the same format. `summary` is a JSON-able dict; every section is optional except "title":

    format      "kairos-eval/1"
    title       str, e.g. "demo_dual_arm / extrapolate"
    mode        "offline" | "live"
    created     ISO 8601 UTC time of writing (filled in when absent)
    config      {backend, model, embodiment, horizon, step_period, history, layout, cameras, ...}
    bag         {path, name, storage, start_time, duration, message_count, topics, ...}
    versions    {kairos_ros, python, numpy, rosbags, torch, ...}
    counts      {observations, predictions, failed_predictions, resets (input time jumps),
                 history_resets, dropped_inputs: {key: n}; live: trajectories, adapter: {key: n}
                 (the adapter's /diagnostics counts: refusals per gate, holds)}
    actions     {slot_names [D], step_period, horizon H, truth: what the chunk was compared with,
                 per_step: {mae [H], rmse [H], count [H]}   (over all slots; null where count 0)
                 per_slot: {mae [D], rmse [D], count [D]}   (over all steps)
                 overall:  {mae, rmse, count}}               errors in slot units
    frames      {offsets [F] (s after the observation), psnr [F], ssim [F], count [F],
                 unmatched, overall: {psnr, ssim, count}}
    latency     {count, mean, p50, p90, p99, max, samples [N] (seconds), what: what was timed
                 (default: wall-clock time of backend.predict)}
    inference   {latency_p50, latency_p90, latency_p99} (live: as the world-model node reports it)
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

FORMAT = "kairos-eval/1"
STEP_ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)  # horizon steps shown in report.md


def shown_steps(horizon: int) -> list[int]:
    """The horizon steps a report's tables show: STEP_ROWS up to the horizon, and the last step
    (none for horizon 0: no chunk arrived)."""
    return [k for k in STEP_ROWS if k <= horizon] + ([horizon] if horizon and horizon not in STEP_ROWS else [])


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _figure(width: float = 6.0, height: float = 3.2):
    from matplotlib.figure import Figure  # here: only a report draws; no pyplot, so no global backend state

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path.name


def _valid(xs, ys):
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_actions_vs_step(actions: dict, path: Path) -> str:
    fig, ax = _figure()
    steps = list(range(1, len(actions["per_step"]["mae"]) + 1))
    for key, label in (("mae", "MAE"), ("rmse", "RMSE")):
        xs, ys = _valid(steps, actions["per_step"][key])
        ax.plot(xs, ys, marker=".", label=label)
    ax.set_xlabel(f"horizon step (x {actions.get('step_period', 0):.3g} s)")
    ax.set_ylabel("error (slot units)")
    ax.set_title("Action error vs horizon step")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_slot_mae(actions: dict, path: Path) -> str:
    names = actions["slot_names"]
    fig, ax = _figure(max(6.0, 0.35 * len(names) + 2), 3.4)
    values = [v if v is not None else 0.0 for v in actions["per_slot"]["mae"]]
    ax.bar(range(len(names)), values, color="tab:blue")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("MAE (slot units)")
    ax.set_title("Action MAE per slot (all horizon steps)")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_frames(frames: dict, path: Path) -> str:
    fig, ax = _figure()
    xs, ys = _valid(frames["offsets"], frames["psnr"])
    ax.plot(xs, ys, marker="o", color="tab:green", label="PSNR (dB)")
    ax.set_xlabel("time after observation (s)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    xs, ys = _valid(frames["offsets"], frames["ssim"])
    twin.plot(xs, ys, marker="s", color="tab:purple", label="SSIM")
    twin.set_ylabel("SSIM")
    ax.set_title("Predicted frames vs real future")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="best")
    return _save(fig, path)


def _latency_what(latency: dict) -> str:
    return latency.get("what") or "backend.predict wall-clock time per call"


def _latency_count(latency: dict) -> int:
    return int(latency.get("count") or len(latency.get("samples") or []))


def plot_latency(latency: dict, path: Path) -> str:
    fig, ax = _figure()
    samples_ms = [1000.0 * s for s in latency.get("samples", [])]
    ax.hist(samples_ms, bins=min(40, max(5, len(samples_ms) // 4)), color="tab:orange")
    for key, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        if latency.get(key) is not None:
            ax.axvline(1000.0 * latency[key], color="k", linestyle=style, label=f"{key} {1000 * latency[key]:.3g} ms")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("calls")
    ax.set_title(_latency_what(latency)[:70], fontsize=9)
    ax.legend()
    return _save(fig, path)


def _headline(summary: dict) -> list[list]:
    cfg, counts = summary.get("config", {}), summary.get("counts", {})
    rows = [[k, cfg[k]] for k in ("backend", "model", "embodiment", "layout", "horizon", "step_period", "history")
            if k in cfg]
    if cfg.get("profile"):
        rows.append(["profile", cfg["profile"]])
    instruction = cfg.get("instruction")
    if isinstance(instruction, dict):
        rows.append(["instruction", f"'{instruction.get('final', '')}' (start: {instruction.get('initial_from', '')}; "
                                    f"{instruction.get('messages_in_bag', 0)} message(s) in the bag)"])
    if "bag" in summary:
        bag = summary["bag"]
        rows.append(["bag", f"{bag.get('name', '')} ({bag.get('storage', '')}, {_fmt(bag.get('duration'))} s)"])
    rows += [[k, counts[k]] for k in ("observations", "predictions", "failed_predictions", "resets", "trajectories")
             if k in counts]
    actions = summary.get("actions")
    if actions:
        rows.append(["action MAE, all steps", actions["overall"]["mae"]])
        rows.append(["action MAE, step 1", actions["per_step"]["mae"][0] if actions["per_step"]["mae"] else None])
    frames = summary.get("frames")
    if frames and frames.get("overall", {}).get("count"):
        rows.append(["frame PSNR (dB) / SSIM", f"{_fmt(frames['overall']['psnr'])} / {_fmt(frames['overall']['ssim'])}"])
    lat = summary.get("latency")
    if lat and _latency_count(lat):
        rows.append(["latency p50 / p90 / p99 (ms)",
                     " / ".join(_fmt(1000 * lat[k]) if lat.get(k) is not None else "n/a" for k in ("p50", "p90", "p99"))])
    return rows


def render_markdown(summary: dict, plots: dict[str, str]) -> str:
    out = [f"# Kairos evaluation: {summary.get('title', '')}", "",
           f"{summary.get('mode', 'offline')} evaluation written {summary.get('created', '')}. "
           "All numbers are also in report.json.", ""]
    out += _table(["", "value"], _headline(summary))
    actions = summary.get("actions")
    if actions:
        per = actions["per_step"]
        h = len(per["mae"])
        out += ["## Actions", "", f"Predicted chunk rows vs {actions.get('truth', 'ground truth')}; "
                f"row k stands for stamp + k x {_fmt(actions.get('step_period'))} s. Errors in slot units.", ""]
        shown = shown_steps(h)
        out += _table(["step", "t (s)", "MAE", "RMSE", "samples"],
                      [[k, k * actions.get("step_period", 0.0), per["mae"][k - 1], per["rmse"][k - 1],
                        per["count"][k - 1]] for k in shown])
        if "actions_vs_step" in plots:
            out += [f"![action error vs horizon step]({plots['actions_vs_step']})", ""]
        slot = actions["per_slot"]
        out += _table(["slot", "MAE", "RMSE"], [[n, slot["mae"][i], slot["rmse"][i]]
                                                 for i, n in enumerate(actions["slot_names"])])
        if "slot_mae" in plots:
            out += [f"![action MAE per slot]({plots['slot_mae']})", ""]
    frames = summary.get("frames")
    if frames and frames.get("offsets"):
        out += ["## Predicted frames", "", "Each predicted frame vs the real composed observation closest to "
                "stamp + offset (within half a camera period); unmatched frames: "
                f"{frames.get('unmatched', 0)}.", ""]
        out += _table(["offset (s)", "PSNR (dB)", "SSIM", "samples"],
                      [[dt, frames["psnr"][i], frames["ssim"][i], frames["count"][i]]
                       for i, dt in enumerate(frames["offsets"])])
        if "frames" in plots:
            out += [f"![PSNR and SSIM vs horizon]({plots['frames']})", ""]
    lat = summary.get("latency")
    if lat and _latency_count(lat):
        out += ["## Latency", "", f"What was timed: {_latency_what(lat)}.", ""]
        out += _table(["samples", "mean (ms)", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)"],
                      [[_latency_count(lat)] + [1000 * lat[k] if lat.get(k) is not None else None
                                         for k in ("mean", "p50", "p90", "p99", "max")]])
        if "latency" in plots:
            out += [f"![latency histogram]({plots['latency']})", ""]
    inference = summary.get("inference")
    if inference and any(v is not None for v in inference.values()):
        out += ["## Inference (world-model node)", ""]
        out += _table(["", "ms"], [[k, 1000 * v if v is not None else None] for k, v in sorted(inference.items())])
    adapter = summary.get("counts", {}).get("adapter")
    if adapter:
        out += ["## Adapter", "", "What the embodiment adapter counted (its /diagnostics): chunks refused by each "
                "safety gate, watchdog holds, clamped values. On a replayed bag the robot does not follow the "
                "trajectories, so every prediction error at the adapter's latency shows as a start jump.", ""]
        out += _table(["count", "value"], sorted(adapter.items()))
    dropped = summary.get("counts", {}).get("dropped_inputs")
    if dropped:
        out += ["## Dropped inputs", ""] + _table(["reason", "count"], sorted(dropped.items()))
    if isinstance((summary.get("config") or {}).get("instruction"), dict):
        out += ["## Instruction", "", f"Rule (the live graph follows the same one): "
                f"{summary['config']['instruction'].get('rule', '')}.", ""]
    for key, heading in (("config", "Configuration"), ("bag", "Bag"), ("versions", "Versions")):
        if summary.get(key):
            out += [f"## {heading}", "", "```json", json.dumps(summary[key], indent=2, sort_keys=True), "```", ""]
    return "\n".join(out)


def jsonable(value):
    """numpy scalars/arrays -> Python, NaN/inf -> None (JSON has neither), recursively."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(summary: dict, out_dir) -> Path:
    """Write report.json, report.md and its PNG plots into out_dir; returns report.md's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = jsonable(summary)
    summary.setdefault("format", FORMAT)
    summary.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    plots: dict[str, str] = {}
    actions, frames, lat = summary.get("actions"), summary.get("frames"), summary.get("latency")
    if actions and actions.get("per_step", {}).get("mae") and any(v is not None for v in actions["per_step"]["mae"]):
        plots["actions_vs_step"] = plot_actions_vs_step(actions, out / "actions_vs_step.png")
        plots["slot_mae"] = plot_slot_mae(actions, out / "slot_mae.png")
    if frames and frames.get("overall", {}).get("count"):
        plots["frames"] = plot_frames(frames, out / "frames_vs_horizon.png")
    if lat and lat.get("samples"):
        plots["latency"] = plot_latency(lat, out / "latency_hist.png")
    summary["plots"] = plots
    (out / "report.json").write_text(json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n")
    path = out / "report.md"
    path.write_text(render_markdown(summary, plots) + "\n")
    return path
