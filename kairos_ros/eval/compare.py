"""Side-by-side comparison of several backends evaluated on the same bag (kairos-eval --backend a,b).

comparison.json holds, per backend, the overall action MAE, the per-step MAE curve, the frame
PSNR/SSIM and the latency percentiles, plus for each horizon step which backend had the lowest
MAE; comparison.md renders it with one plot of the MAE curves. Each backend's full report is
written next to it by report.write_report.
"""
from __future__ import annotations

import json
from pathlib import Path

from kairos_ros.eval.report import _figure, _fmt, _save, _table, _valid, jsonable, shown_steps


def compare(summaries: dict[str, dict]) -> dict:
    """summaries: backend name -> evaluation summary (same bag and horizon). Raises ValueError
    when they were not evaluated alike (different bag, horizon or step period)."""
    if len(summaries) < 2:
        raise ValueError(f"a comparison needs at least two backends, got {list(summaries)}")
    keys = {}
    for name, s in summaries.items():
        cfg, actions = s.get("config", {}), s.get("actions") or {}
        keys[name] = (s.get("bag", {}).get("path"), cfg.get("horizon"), actions.get("step_period"))
    if len(set(keys.values())) > 1:
        raise ValueError(f"backends were not evaluated alike (bag, horizon, step period): {keys}")
    names = list(summaries)
    per_step = {n: (summaries[n].get("actions") or {}).get("per_step", {}).get("mae", []) for n in names}
    horizon = max(len(v) for v in per_step.values())
    best = []
    for k in range(horizon):
        scored = [(per_step[n][k], n) for n in names if k < len(per_step[n]) and per_step[n][k] is not None]
        best.append(min(scored)[1] if scored else None)
    rows = {}
    for n in names:
        s = summaries[n]
        actions, frames, lat = s.get("actions") or {}, s.get("frames") or {}, s.get("latency") or {}
        rows[n] = {"model": s.get("config", {}).get("model"),
                   "mae": actions.get("overall", {}).get("mae"), "mae_per_step": per_step[n],
                   "psnr": frames.get("overall", {}).get("psnr"), "ssim": frames.get("overall", {}).get("ssim"),
                   "latency_p50": lat.get("p50"), "latency_p99": lat.get("p99"),
                   "predictions": s.get("counts", {}).get("predictions")}
    first = summaries[names[0]]
    return jsonable({"format": "kairos-eval-comparison/1", "bag": first.get("bag", {}),
                     "horizon": horizon, "step_period": (first.get("actions") or {}).get("step_period"),
                     "backends": rows, "best_per_step": best,
                     "steps_won": {n: best.count(n) for n in names}})


def _plot(comparison: dict, path: Path) -> str:
    fig, ax = _figure()
    for name, row in comparison["backends"].items():
        xs, ys = _valid(range(1, len(row["mae_per_step"]) + 1), row["mae_per_step"])
        ax.plot(xs, ys, marker=".", label=name)
    ax.set_xlabel(f"horizon step (x {comparison.get('step_period') or 0:.3g} s)")
    ax.set_ylabel("action MAE (slot units)")
    ax.set_title("Action error vs horizon step, per backend")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def render(comparison: dict, plot: str | None, report_dirs: dict[str, str]) -> str:
    names = list(comparison["backends"])
    rows = comparison["backends"]
    bag = comparison.get("bag", {})
    out = [f"# Kairos evaluation: backends compared on {bag.get('name', 'the bag')}", "",
           "Every backend ran on the same bag through the same perception pipeline. "
           "Lower MAE is better; each backend's full report is linked below.", ""]
    def ms(v):
        return None if v is None else 1000 * v

    out += _table(["backend", "model", "action MAE", "steps won", "frame PSNR (dB)", "SSIM", "p50 (ms)", "p99 (ms)"],
                  [[n, rows[n]["model"], rows[n]["mae"], comparison["steps_won"][n], rows[n]["psnr"], rows[n]["ssim"],
                    ms(rows[n]["latency_p50"]), ms(rows[n]["latency_p99"])] for n in names])
    h = comparison["horizon"]
    shown = shown_steps(h)
    period = comparison.get("step_period") or 0.0
    table = []
    for k in shown:
        maes = [rows[n]["mae_per_step"][k - 1] if k - 1 < len(rows[n]["mae_per_step"]) else None for n in names]
        table.append([k, k * period] + maes + [comparison["best_per_step"][k - 1]])
    out += ["## Action MAE per horizon step", ""]
    out += _table(["step", "t (s)"] + names + ["best"], table)
    if plot:
        out += [f"![action MAE per backend]({plot})", ""]
    out += ["## Reports", ""] + [f"- {n}: [{d}/report.md]({d}/report.md)" for n, d in report_dirs.items()] + [""]
    return "\n".join(out)


def write_comparison(comparison: dict, out_dir, report_dirs: dict[str, str]) -> Path:
    """comparison.json, comparison.md and comparison_mae.png into out_dir; returns comparison.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2, sort_keys=True, allow_nan=False) + "\n")
    has_curve = any(v is not None for row in comparison["backends"].values() for v in row["mae_per_step"])
    plot = _plot(comparison, out / "comparison_mae.png") if has_curve else None
    path = out / "comparison.md"
    path.write_text(render(comparison, plot, report_dirs) + "\n")
    return path


def crossover_text(comparison: dict) -> str:
    """One line: which backend is best over which steps (e.g. for the CLI)."""
    best, parts, start = comparison["best_per_step"], [], 0
    for k in range(1, len(best) + 1):
        if k == len(best) or best[k] != best[start]:
            parts.append(f"{best[start]} best at steps {start + 1}-{k}" if k - start > 1
                         else f"{best[start]} best at step {k}")
            start = k
    maes = ", ".join(f"{n} {_fmt(r['mae'])}" for n, r in comparison["backends"].items())
    return "; ".join(parts) + f" (overall MAE: {maes})"
