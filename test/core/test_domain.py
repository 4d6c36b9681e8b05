"""core/domain.py: a run's DDS domain is one no other live kairos_ros process holds."""
import subprocess
import sys

import pytest

from kairos_ros.core.domain import claim_domain, parse_domain


def test_claims_are_exclusive_while_held(tmp_path):
    a, ha = claim_domain(range(10, 13), str(tmp_path), start=0)
    b, hb = claim_domain(range(10, 13), str(tmp_path), start=0)
    assert (a, b) == (10, 11) and ha is not None and hb is not None
    ha.close()  # released: the next claim may take it again
    c, hc = claim_domain(range(10, 13), str(tmp_path), start=0)
    assert c == 10
    d, hd = claim_domain(range(10, 13), str(tmp_path), start=0)
    assert d == 12
    e, he = claim_domain(range(10, 13), str(tmp_path), start=0)  # every domain taken: pid-based, no lock
    assert e == 10 and he is None
    for h in (hb, hc, hd):
        h.close()


def test_another_process_holding_a_domain_is_skipped(tmp_path):
    code = ("import sys; from kairos_ros.core.domain import claim_domain; "  # holds it until stdin closes
            f"d, h = claim_domain(range(20, 22), {str(tmp_path)!r}, start=0); print(d, flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "20"
        mine, handle = claim_domain(range(20, 22), str(tmp_path), start=0)
        assert mine == 21 and handle is not None
        handle.close()
    finally:
        child.kill()
        child.wait()  # ended: the kernel has dropped its lock
        child.stdin.close()
        child.stdout.close()
    mine, handle = claim_domain(range(20, 22), str(tmp_path), start=0)  # the dead process's lock is gone
    assert mine == 20
    handle.close()


@pytest.mark.parametrize("value,expect", [("auto", None), ("0", 0), ("232", 232)])
def test_parse_domain(value, expect):
    assert parse_domain(value) == expect


@pytest.mark.parametrize("value", ["233", "-1", "many"])
def test_parse_domain_refuses_by_name(value):
    with pytest.raises(ValueError, match=f"--domain '{value}' must be 'auto' or an integer in"):
        parse_domain(value)
