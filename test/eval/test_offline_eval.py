"""kairos-eval / evaluate_bag on the fixture bags: sensible numbers, report files, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kairos_ros.lib.bagsource import EvalError
from kairos_ros.eval.cli import main
from kairos_ros.eval.offline import evaluate_bag
from kairos_ros.eval.report import write_report

BAGS = Path(__file__).resolve().parents[1] / "fixtures" / "bags"
SINGLE = BAGS / "single_arm_mcap"
TOP_KEYS = {"format", "title", "mode", "config", "bag", "versions", "counts", "actions", "frames", "latency"}


@pytest.fixture(scope="module")
def single_arm():
    return {name: evaluate_bag(SINGLE, name, horizon=16) for name in ("hold", "extrapolate")}


def test_extrapolate_beats_hold_at_short_horizons(single_arm):
    hold, extra = single_arm["hold"]["actions"], single_arm["extrapolate"]["actions"]
    assert extra["per_step"]["mae"][0] < hold["per_step"]["mae"][0]
    assert np.mean(extra["per_step"]["mae"][:4]) < 0.8 * np.mean(hold["per_step"]["mae"][:4])
    # Holding still gets worse the further ahead it looks on a moving arm.
    assert hold["per_step"]["mae"][-1] > hold["per_step"]["mae"][0]


def test_summary_is_consistent(single_arm):
    s = single_arm["hold"]
    assert TOP_KEYS <= set(s)
    counts, actions = s["counts"], s["actions"]
    assert s["config"]["embodiment"] == "franka_panda" and s["config"]["embodiment_detected"]  # by its joints
    assert s["config"]["layout"] == "single" and s["config"]["cameras"] == {"head": "/cameras/head/image_raw"}
    assert 35 <= counts["observations"] <= 41  # 4 s of 10 Hz camera, one observation per frame
    assert counts["predictions"] == counts["observations"]
    assert counts["failed_predictions"] == 0 and not counts["dropped_inputs"]
    assert len(actions["per_step"]["mae"]) == 16 and len(actions["per_slot"]["mae"]) == len(actions["slot_names"])
    # Rows past the end of the recording are excluded: later steps have fewer samples.
    assert actions["per_step"]["count"][0] > actions["per_step"]["count"][-1] > 0
    assert s["latency"]["count"] == counts["predictions"] and s["latency"]["p50"] >= 0
    frames = s["frames"]
    assert frames["overall"]["count"] > 0 and frames["overall"]["ssim"] <= 1.0
    assert frames["offsets"] == sorted(frames["offsets"])


@pytest.mark.parametrize("bag, embodiment, layout", [("dual_arm_sqlite3", "aloha", "side_by_side"),
                                                     ("hand_compressed_mcap", "shadow_hand", "single")])
def test_other_storages_and_encodings(bag, embodiment, layout):
    s = evaluate_bag(BAGS / bag, "extrapolate", horizon=8, max_steps=10)
    assert s["config"]["embodiment"] == embodiment and s["config"]["layout"] == layout
    assert s["counts"]["predictions"] == 10 and not s["counts"]["dropped_inputs"]
    assert s["bag"]["storage"] == ("sqlite3" if "sqlite3" in bag else "mcap")
    assert s["actions"]["overall"]["count"] > 0 and s["frames"]["overall"]["count"] > 0


def test_cli_writes_reports(tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(SINGLE), "--backend", "extrapolate", "--horizon", "8", "--max-steps", "12", "--out", str(out),
                 "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.md")
    summary = json.loads((out / "report.json").read_text())
    assert TOP_KEYS | {"created", "plots"} <= set(summary)
    assert summary["counts"]["predictions"] == 12
    for png in summary["plots"].values():
        assert (out / png).stat().st_size > 1000
    assert set(summary["plots"]) == {"actions_vs_step", "slot_mae", "frames", "latency"}
    text = (out / "report.md").read_text()
    assert "## Actions" in text and "![action error vs horizon step](actions_vs_step.png)" in text


def test_write_report_with_partial_summary(tmp_path):
    """The live evaluator may only have actions and latency: the report still renders."""
    summary = {"title": "live / hold", "mode": "live", "config": {"backend": "hold"},
               "actions": {"slot_names": ["a", "b"], "step_period": 0.05, "horizon": 2,
                           "per_step": {"mae": [0.1, float("nan")], "rmse": [0.2, None], "count": [3, 0]},
                           "per_slot": {"mae": [0.1, 0.2], "rmse": [0.1, 0.3], "count": [3, 3]},
                           "overall": {"mae": 0.15, "rmse": 0.2, "count": 6}},
               "latency": {"count": 2, "p50": 0.01, "p90": 0.02, "p99": 0.02, "mean": 0.015, "max": 0.02,
                           "samples": np.array([0.01, 0.02])}}
    path = write_report(summary, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["actions"]["per_step"]["mae"] == [0.1, None] and data["format"] == "kairos-eval/1"
    assert "live / hold" in path.read_text()


def test_bad_arguments(tmp_path, capsys):
    missing = tmp_path / "no_such_bag"
    assert main([str(missing), "--backend", "hold"]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main([str(SINGLE), "--backend", "crystal_ball", "--quiet"]) == 2
    assert "crystal_ball" in capsys.readouterr().err
    assert main([str(SINGLE), "--backend", "hold", "--embodiment", "octopus", "--quiet"]) == 2
    assert "octopus" in capsys.readouterr().err
    assert main([str(SINGLE), "--backend", "hold", "--cameras", "/nope/image_raw", "--quiet"]) == 2
    assert "/nope/image_raw" in capsys.readouterr().err
    with pytest.raises(EvalError, match="aloha"):  # the wrong embodiment (named by an alias) for the joints
        evaluate_bag(SINGLE, "hold", embodiment="dual_arm")


def test_live_report_shows_the_adapters_counts(tmp_path):
    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.eval.live import live_summary

    spec = load_embodiment("single_arm")
    snapshot = {"chunks": [], "states_t": np.zeros(0), "states_q": np.zeros((0, len(spec.joint_names))),
                "e2e_latency": [], "e2e": {}, "counts": {"observations": 5, "predictions": 4, "trajectories": 1},
                "adapter": {"refused_start_jump": 3, "watchdog_hold": 1}}
    summary = live_summary(snapshot, spec, {"backend": "kairos", "bag_name": "b"})
    text = write_report(summary, tmp_path).read_text()
    assert "## Adapter" in text and "| refused_start_jump | 3 |" in text and "| trajectories | 1 |" in text
