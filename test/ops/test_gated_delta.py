"""Gated delta rule: the chunked CPU path against the naive recurrence, state carry-over, the
semantics by hand and the dispatcher (docs/architecture.md, convention 3). The Triton kernel: test_triton.py."""
import importlib.util

import pytest
import torch

import kairos_ros.ops.gated_delta as gdn
from kairos_ros.ops.gated_delta import gated_delta_rule, select_backend
from kairos_ros.ops.gated_delta.naive import gated_delta_naive

TOL = 2e-5  # relative (max abs error / max abs reference), float32


def inputs(t, seed=0, b=2, h=3, dk=16, dv=24):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    return (r(b, t, h, dk), r(b, t, h, dk), r(b, t, h, dv), -torch.rand(b, t, h, generator=gen) * 0.5,
            torch.rand(b, t, h, generator=gen), r(b, h, dk, dv))


def rel(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


@pytest.mark.parametrize("t", [1, 2, 37, 64, 130])
@pytest.mark.parametrize("l2", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_chunked_matches_naive(t, l2, with_state):
    q, k, v, g, beta, s0 = inputs(t, seed=t, dk=12 if l2 else 16)
    if not l2:  # without the in-kernel L2 norm, unit-norm keys keep the recurrence contractive
        k = k / k.norm(dim=-1, keepdim=True)
    s0 = s0 if with_state else None
    kw = dict(initial_state=s0, output_final_state=True, use_qk_l2norm=l2, scale=0.3)
    on, sn = gated_delta_rule(q, k, v, g, beta, backend="naive", **kw)
    oc, sc = gated_delta_rule(q, k, v, g, beta, backend="chunked", **kw)
    assert not torch.isnan(oc).any() and not torch.isnan(sc).any(), "an output element was never written"
    assert oc.shape == v.shape and sc.shape == (2, 3, q.shape[-1], 24) and sc.dtype == torch.float32
    assert rel(oc, on) < TOL and rel(sc, sn) < TOL


def test_chunked_long_sequence_with_strong_decay():
    # Several chunks plus a ragged tail; decays down to e^-8 per token stress the exponent bookkeeping.
    q, k, v, g, beta, s0 = inputs(300, seed=7, b=1, h=2, dk=16, dv=8)
    g = g * 16
    on, sn = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, backend="naive")
    oc, sc = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, backend="chunked")
    assert rel(oc, on) < TOL and rel(sc, sn) < TOL


@pytest.mark.parametrize("backend", ["naive", "chunked"])
@pytest.mark.parametrize("split", [1, 41, 64])
def test_state_carries_across_calls(backend, split):
    q, k, v, g, beta, s0 = inputs(100, seed=5)
    full, s_full = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, backend="naive")
    first = [x[:, :split] for x in (q, k, v, g, beta)]
    second = [x[:, split:] for x in (q, k, v, g, beta)]
    a, s_a = gated_delta_rule(*first, initial_state=s0, output_final_state=True, backend=backend)
    b, s_b = gated_delta_rule(*second, initial_state=s_a, output_final_state=True, backend=backend)
    assert rel(torch.cat([a, b], 1), full) < TOL and rel(s_b, s_full) < TOL


def test_initial_state_is_not_modified():
    q, k, v, g, beta, s0 = inputs(70, seed=3)
    before = s0.clone()
    for backend in ("naive", "chunked"):
        gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, backend=backend)
    assert torch.equal(s0, before)


def test_low_precision_inputs_compute_in_float32():
    q, k, v, g, beta, s0 = inputs(37, seed=11)
    o, s = gated_delta_rule(q.bfloat16(), k.bfloat16(), v.bfloat16(), g, beta, initial_state=s0,
                            output_final_state=True)
    ref, s_ref = gated_delta_naive(q.bfloat16().float(), k.bfloat16().float(), v.bfloat16().float(), g, beta,
                                   16 ** -0.5, s0)
    assert o.dtype == torch.bfloat16 and s.dtype == torch.float32
    assert rel(s, s_ref) < TOL and rel(o, ref) < 1e-2  # o only carries bf16 rounding


@pytest.mark.parametrize("l2", [True, False])
def test_semantics_by_hand(l2):
    # Two tokens, one head, K = V = 1; scale 0.5 and l2 norm as documented.
    q = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1)
    k = torch.tensor([3.0, 0.5]).view(1, 2, 1, 1)
    v = torch.tensor([5.0, 1.0]).view(1, 2, 1, 1)
    g = torch.tensor([-0.1, -0.7]).view(1, 2, 1)
    beta = torch.tensor([0.5, 0.25]).view(1, 2, 1)
    norm = (lambda x: x / (x * x + 1e-6) ** 0.5) if l2 else (lambda x: x)
    s = 0.0
    expected = []
    for t in range(2):
        kt, qt = norm(k[0, t, 0, 0].item()), norm(q[0, t, 0, 0].item()) * 0.5
        s = s * torch.exp(g[0, t, 0]).item()
        u = beta[0, t, 0].item() * (v[0, t, 0, 0].item() - s * kt)
        s = s + kt * u
        expected.append(s * qt)
    for backend in ("naive", "chunked"):
        o, st = gated_delta_rule(q, k, v, g, beta, scale=0.5, use_qk_l2norm=l2, output_final_state=True,
                                 backend=backend)
        assert o.flatten().tolist() == pytest.approx(expected, rel=1e-5)
        assert st.item() == pytest.approx(s, rel=1e-5)


def test_default_scale_is_k_to_minus_half():
    q, k, v, g, beta, _ = inputs(9, dk=16)
    a, _ = gated_delta_rule(q, k, v, g, beta)
    b, _ = gated_delta_rule(q, k, v, g, beta, scale=0.25)
    assert torch.equal(a, b)


def test_dispatcher_choices():
    assert select_backend("auto", is_cuda=False) == "chunked"
    assert select_backend("auto", is_cuda=False, has_fla=True) == "chunked"
    assert select_backend("auto", is_cuda=True, has_fla=True) == "fla"
    assert select_backend("auto", is_cuda=True, has_fla=False) == "triton"
    for name in ("naive", "chunked", "triton", "fla"):
        assert select_backend(name, is_cuda=False) == name
    with pytest.raises(ValueError, match="backend 'cuda-magic'"):
        select_backend("cuda-magic", is_cuda=True)


def test_dispatcher_calls_the_chunked_path_on_cpu(monkeypatch):
    calls = []
    real = gdn.gated_delta_chunked
    monkeypatch.setattr(gdn, "gated_delta_chunked", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    q, k, v, g, beta, _ = inputs(5)
    o, s = gated_delta_rule(q, k, v, g, beta)
    assert calls == [1] and s is None and o.shape == v.shape and o.dtype == v.dtype


def test_dispatcher_errors():
    q, k, v, g, beta, s0 = inputs(5)
    with pytest.raises(ValueError, match="backend 'cuda-magic'"):
        gated_delta_rule(q, k, v, g, beta, backend="cuda-magic")
    with pytest.raises(ValueError, match="beta must be"):
        gated_delta_rule(q, k, v, g, beta[:, :4])
    with pytest.raises(ValueError, match="initial_state must be"):
        gated_delta_rule(q, k, v, g, beta, initial_state=s0[:, :, :3])
    with pytest.raises(ValueError, match="'fla'"):  # CPU tensors, and fla is optional
        gated_delta_rule(q, k, v, g, beta, backend="fla")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_backend_refuses_cpu_tensors_outside_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q, k, v, g, beta, _ = inputs(5)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        gated_delta_rule(q, k, v, g, beta, backend="triton")


@pytest.mark.parametrize("t", [3, 70])  # the plain recurrence and two chunks (one partial)
def test_chunked_gradients_match_naive(t):
    """Training (kairos-train) backpropagates through the chunked path: its gradients with respect to
    every input equal the naive recurrence's."""
    base = inputs(t, seed=10 + t)
    grads = {}
    for backend in ("naive", "chunked"):
        xs = [x.clone().requires_grad_(True) for x in base]
        o, s = gated_delta_rule(*xs[:5], initial_state=xs[5], output_final_state=True, backend=backend)
        ((o * torch.linspace(-1, 1, o.shape[-1])).sum() + s.square().sum()).backward()
        grads[backend] = [x.grad for x in xs]
    for name, gn, gc in zip(("q", "k", "v", "g", "beta", "state"), grads["naive"], grads["chunked"]):
        assert rel(gc, gn) < 1e-4, name
