"""kairos-bench serve runs end to end (figures printed and written; speed itself is not asserted)."""
from __future__ import annotations

import json

from kairos_ros.tools.bench import main
from serve_util import CONFIG


def test_bench_serve_writes_its_table_and_json(tmp_path, capsys):
    assert main(["serve", "--seconds", "0.3", "--robots", "1", "2", "--config", CONFIG, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "serve.json").read_text())
    assert [r["robots"] for r in result["rows"]] == [1, 2]
    for row in result["rows"]:
        for where in ("in_process", "remote"):
            assert row[where]["predictions"] > 0 and row[where]["chunk_p50_ms"] > 0
    assert "hop adds" in capsys.readouterr().out and "met" in result["target"]
