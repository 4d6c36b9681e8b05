"""kairos-eval reads the robot's bringup profile as kairos-bringup does (issue 12): the shipped model
evaluates with no flags, flags override the profile, --config none and a bad profile behave, and the
instruction follows the one rule stated in the report."""
import json
from pathlib import Path

import pytest

from kairos_ros.eval.cli import main
from kairos_ros.lib.profile import INSTRUCTION_RULE

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo_transfer_cube"  # held-out ALOHA demonstration; records /instruction once


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_the_shipped_model_evaluates_with_no_flags(tmp_path):
    assert main([str(DEMO), "--backend", "kairos", "--max-steps", "3", "--out", str(tmp_path), "--quiet"]) == 0
    r = report(tmp_path)
    cfg = r["config"]
    assert Path(cfg["profile"]) == ROOT / "config" / "aloha.yaml"
    # the profile's perception and world_model sections, as the nodes read them
    assert (cfg["layout"], cfg["tile_width"], cfg["tile_height"], cfg["horizon"], cfg["history"]) == \
        ("robotwin", 64, 48, 32, 8)
    assert cfg["backend_params"]["dit_checkpoint"].endswith("kairos-nano-aloha/dit.safetensors")
    assert cfg["backend_params"]["temporal_mode"] == "official"
    assert r["counts"]["predictions"] == 3 and r["counts"]["failed_predictions"] == 0
    ins = cfg["instruction"]
    assert ins["rule"] == INSTRUCTION_RULE and ins["initial_from"].startswith("profile ")
    assert ins["initial"] == ins["final"] == "transfer the red cube to the other arm"
    assert ins["messages_in_bag"] == 1
    assert "## Instruction" in (tmp_path / "report.md").read_text()


def test_flags_override_the_profile(tmp_path):
    assert main([str(DEMO), "--backend", "hold", "--horizon", "8", "--history", "2", "--instruction", "wave",
                 "--max-steps", "2", "--out", str(tmp_path), "--quiet"]) == 0
    cfg = report(tmp_path)["config"]
    assert (cfg["horizon"], cfg["history"], cfg["tile_width"]) == (8, 2, 64)  # tile from the profile
    ins = cfg["instruction"]
    # the bag's recorded instruction replaces the one given at the start, as live
    assert (ins["initial"], ins["initial_from"], ins["final"]) == ("wave", "--instruction",
                                                                  "transfer the red cube to the other arm")


def test_config_none_uses_the_flags_and_defaults(tmp_path):
    assert main([str(DEMO), "--backend", "hold", "--config", "none", "--max-steps", "2", "--out", str(tmp_path),
                 "--quiet"]) == 0
    cfg = report(tmp_path)["config"]
    assert cfg["profile"] is None and (cfg["tile_width"], cfg["tile_height"]) == (160, 128)
    assert cfg["instruction"]["initial_from"] == "none"


def test_a_profile_that_does_not_validate_is_refused_naming_the_parameter(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config" / "aloha.yaml").read_text().replace("horizon: 32", "horizon: -4"))
    assert main([str(DEMO), "--backend", "hold", "--config", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "horizon" in err and "-4" in err and str(bad) in err


def test_a_missing_config_file_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(DEMO), "--backend", "hold", "--config", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2 and "nope.yaml" in capsys.readouterr().err
