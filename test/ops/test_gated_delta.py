"""Gated delta rule: the chunked CPU path against the naive recurrence (design.md convention 3)."""
import pytest
import torch

from kairos_ros.ops.gated_delta import gated_delta_rule
from kairos_ros.ops.gated_delta.naive import gated_delta_naive


def inputs(t, seed=0, b=2, h=3, dk=16, dv=24):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    return (r(b, t, h, dk), r(b, t, h, dk), r(b, t, h, dv), -torch.rand(b, t, h, generator=gen) * 0.5,
            torch.rand(b, t, h, generator=gen), r(b, h, dk, dv))


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("t", [1, 37, 64, 130])
@pytest.mark.parametrize("l2", [True, False])
def test_chunked_matches_naive(t, l2):
    q, k, v, g, beta, s0 = inputs(t, seed=t)
    if not l2:  # without the kernel's L2 norm, keep the recurrence stable with unit-norm keys
        k = k / k.norm(dim=-1, keepdim=True)
    on, sn = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, use_qk_l2norm=l2,
                              backend="naive")
    oc, sc = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, use_qk_l2norm=l2,
                              backend="chunked")
    assert not torch.isnan(oc).any(), "an output element was never written"
    assert rel(oc, on) < 1e-5 and rel(sc, sn) < 1e-5


def test_state_carries_across_calls():
    q, k, v, g, beta, s0 = inputs(100, seed=5)
    full, s_full = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True)
    a, s_a = gated_delta_rule(q[:, :41], k[:, :41], v[:, :41], g[:, :41], beta[:, :41], initial_state=s0,
                              output_final_state=True)
    b, s_b = gated_delta_rule(q[:, 41:], k[:, 41:], v[:, 41:], g[:, 41:], beta[:, 41:], initial_state=s_a,
                              output_final_state=True)
    assert rel(torch.cat([a, b], 1), full) < 1e-5 and rel(s_b, s_full) < 1e-5


def test_naive_prefills_nan_and_semantics_by_hand():
    # One token, one head, K = V = 1: S = exp(g) * 0 + k * beta * v; o = S * q_hat.
    q, k, v = torch.tensor([[[[2.0]]]]), torch.tensor([[[[3.0]]]]), torch.tensor([[[[5.0]]]])
    g, beta = torch.tensor([[[-0.1]]]), torch.tensor([[[0.5]]])
    o, s = gated_delta_naive(q, k, v, g, beta, scale=1.0)
    k_hat = 3.0 / (9.0 + 1e-6) ** 0.5
    q_hat = 2.0 / (4.0 + 1e-6) ** 0.5
    assert s.item() == pytest.approx(k_hat * 0.5 * 5.0, rel=1e-6)
    assert o.item() == pytest.approx(k_hat * 0.5 * 5.0 * q_hat, rel=1e-6)


def test_dispatcher():
    q, k, v, g, beta, _ = inputs(5)
    o, s = gated_delta_rule(q, k, v, g, beta)
    assert s is None and o.shape == v.shape and o.dtype == v.dtype
    with pytest.raises(ValueError, match="backend 'cuda-magic'"):
        gated_delta_rule(q, k, v, g, beta, backend="cuda-magic")
