"""kairos-eval --backend a,b: one comparison of backends evaluated alike on the same bag."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kairos_ros.eval.cli import main
from kairos_ros.eval.compare import compare, crossover_text
from kairos_ros.eval.offline import evaluate_bag

SINGLE = Path(__file__).resolve().parents[1] / "fixtures" / "bags" / "single_arm_mcap"


def _summary(mae_per_step, path="bag", horizon=None, period=0.05):
    h = horizon or len(mae_per_step)
    return {"bag": {"path": path, "name": "b"}, "config": {"horizon": h, "model": "m"},
            "actions": {"step_period": period, "per_step": {"mae": mae_per_step},
                        "overall": {"mae": sum(mae_per_step) / len(mae_per_step)}},
            "frames": {"overall": {}}, "latency": {"p50": 0.001, "p99": 0.002}, "counts": {"predictions": 3}}


def test_best_backend_per_step_and_crossover():
    c = compare({"hold": _summary([0.3, 0.4, 0.5]), "extrapolate": _summary([0.1, 0.45, 0.9])})
    assert c["best_per_step"] == ["extrapolate", "hold", "hold"]
    assert c["steps_won"] == {"hold": 2, "extrapolate": 1}
    assert crossover_text(c).startswith("extrapolate best at step 1; hold best at steps 2-3")


def test_backends_evaluated_differently_are_refused():
    with pytest.raises(ValueError, match="not evaluated alike"):
        compare({"a": _summary([0.1, 0.2]), "b": _summary([0.1, 0.2], path="other")})
    with pytest.raises(ValueError, match="at least two"):
        compare({"a": _summary([0.1])})


def test_cli_compares_the_baselines(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main([str(SINGLE), "--backend", "hold,extrapolate", "--horizon", "8", "--max-steps", "10",
                 "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "comparison.md")
    c = json.loads((out / "comparison.json").read_text())
    assert set(c["backends"]) == {"hold", "extrapolate"}
    # Smooth motion: constant-velocity extrapolation beats holding still one step ahead.
    assert c["best_per_step"][0] == "extrapolate"
    for name in ("hold", "extrapolate"):
        assert (out / name / "report.json").is_file()
    text = (out / "comparison.md").read_text()
    assert "| step | t (s) | hold | extrapolate | best |" in text and (out / "comparison_mae.png").stat().st_size > 1000


def test_cli_refuses_a_backend_named_twice(capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(SINGLE), "--backend", "hold,hold"])
    assert exc.value.code == 2 and "once each" in capsys.readouterr().err


def test_compare_real_summaries_matches_each_report():
    hold = evaluate_bag(SINGLE, "hold", horizon=4, max_steps=5)
    extra = evaluate_bag(SINGLE, "extrapolate", horizon=4, max_steps=5)
    c = compare({"hold": hold, "extrapolate": extra})
    assert c["backends"]["hold"]["mae_per_step"] == pytest.approx(hold["actions"]["per_step"]["mae"])
    assert c["backends"]["extrapolate"]["mae"] == pytest.approx(extra["actions"]["overall"]["mae"])


def test_backend_params_can_target_one_backend():
    from kairos_ros.eval.cli import parse_args

    args = parse_args([str(SINGLE), "--backend", "hold,extrapolate", "--backend-param", "extrapolate:foo=[1, 2]",
                       "--backend-param", "bar=x"])
    assert args.backend_params == {"hold": {"bar": "x"}, "extrapolate": {"foo": [1, 2], "bar": "x"}}


@pytest.mark.parametrize("item, message", [("kairos:foo=1", "names backend 'kairos'"), (":foo=1", "must look like"),
                                           ("foo", "must look like")])
def test_bad_backend_params_are_refused(item, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(SINGLE), "--backend", "hold", "--backend-param", item])
    assert exc.value.code == 2 and message in capsys.readouterr().err
