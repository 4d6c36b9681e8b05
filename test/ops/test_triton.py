"""The project's Triton kernels, run by the Triton interpreter on the CPU (docs/architecture.md, convention 3).

triton_check.py runs in one subprocess with TRITON_INTERPRET=1 set before triton is imported, so
the rest of the pytest session never sees the interpreter; each case is then its own test."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="triton is not installed (requirements.txt pins it)")

TOL = 2e-5
CASE_TOL = {"gdn_bf16": 1e-2}  # both sides round the same float32 result to bf16: an ulp apart at most
GDN_CASES = ["T1_K12_V20", "T37_K16_V40_h0_vblocks", "T70_K8_V33_h0_nol2", "T130_K32_V16_h0",
             "T100_K20_V24_h0_vblocks"]
CASES = ([f"gdn_{mode}_{name}" for mode in ("recurrent", "chunked") for name in GDN_CASES]
         + ["gdn_state_carry_over", "gdn_bf16", "frame_swa", "frame_dswa", "frame_causal_stream", "frame_history",
            "frame_history_causal_blocks", "frame_large_frames_dswa", "frame_rows_without_keys",
            "frame_strided_views"])


@pytest.fixture(scope="module")
def interpreter_results():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=path)
    res = subprocess.run([sys.executable, os.path.join(here, "triton_check.py")], capture_output=True, text=True,
                         timeout=300, env=env, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_every_case_ran(interpreter_results):
    assert sorted(interpreter_results) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_triton_kernel_matches_naive(interpreter_results, case):
    r = interpreter_results[case]
    assert not r["nan"], f"{case}: an output element was never written"
    assert r["out_rel"] < CASE_TOL.get(case, TOL), f"{case}: {r}"
    assert r["state_rel"] is None or r["state_rel"] < TOL, f"{case}: {r}"
    assert r.get("no_state_is_none", True) and r.get("dtype_ok", True), f"{case}: {r}"
