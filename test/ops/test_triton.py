"""The project's Triton kernels, run by the Triton interpreter on the CPU (design.md convention 3).
They run in a subprocess so TRITON_INTERPRET=1 is set before triton is imported and the rest of
the test session is unaffected."""
import json
import os
import subprocess
import sys

import pytest

triton = pytest.importorskip("triton", reason="triton is not installed (requirements.txt pins it)")


def test_triton_kernels_match_naive_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "triton_check.py")
    res = subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    results = json.loads(res.stdout)
    assert len(results) == 7
    for case, r in results.items():
        assert not r["nan"], f"{case}: an output element was never written"
        assert r["out_rel"] < 1e-5 and r["state_rel"] < 1e-5, f"{case}: {r}"
