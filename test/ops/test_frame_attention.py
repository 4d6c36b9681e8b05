"""Frame-windowed attention: masks by hand, the CPU path against the dense reference."""
import pytest
import torch

from kairos_ros.ops.frame_attention import frame_window_attention, frame_window_mask


def frames_of(mask, p):
    return mask[::p, ::p].int().tolist()


def test_masks_by_hand():
    swa = frame_window_mask(5, 5, 1, window=3)
    assert swa[0].tolist() == [True, True, True, False, False]
    dswa = frame_window_mask(10, 10, 1, window=3, dilation=4)
    assert torch.nonzero(dswa[4]).flatten().tolist() == [0, 4, 8]
    assert torch.nonzero(dswa[9]).flatten().tolist() == [1, 5, 9]
    causal = frame_window_mask(4, 4, 1, window=3, causal=True)
    assert causal[3].tolist() == [False, True, True, True]
    hist = frame_window_mask(4, 4, 2, window=3, num_history_frames=2)
    assert frames_of(hist, 2)[1] == [1, 1, 0, 0] and frames_of(hist, 2)[2] == [1, 1, 1, 1]
    offset = frame_window_mask(1, 3, 1, window=2, q_start_frame=5, k_start_frame=3)
    assert offset.tolist() == [[False, True, True]]


@pytest.mark.parametrize("kw", [dict(window=3), dict(window=3, dilation=4), dict(window=3, causal=True),
                                dict(window=2, num_history_frames=3), dict(window=3, dilation=2, causal=True),
                                dict(window=3, q_start_frame=6, k_start_frame=0, causal=True)])
def test_cpu_matches_reference(kw):
    gen = torch.Generator().manual_seed(0)
    p, fq, fk = 5, 11 if "q_start_frame" not in kw else 3, 11 if "q_start_frame" not in kw else 9
    q = torch.randn(2, 3, fq * p, 16, generator=gen)
    k = torch.randn(2, 3, fk * p, 16, generator=gen)
    v = torch.randn(2, 3, fk * p, 16, generator=gen)
    ref = frame_window_attention(q, k, v, tokens_per_frame=p, backend="naive", **kw)
    out = frame_window_attention(q, k, v, tokens_per_frame=p, backend="cpu", **kw)
    assert not torch.isnan(out).any(), "an output element was never written"
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-5


def test_rows_without_keys_are_zero_and_errors():
    q = torch.randn(1, 1, 2, 8)
    k = torch.randn(1, 1, 2, 8)
    out = frame_window_attention(q, k, k, tokens_per_frame=1, window=1, q_start_frame=5, k_start_frame=0)
    assert torch.equal(out, torch.zeros_like(out))
    with pytest.raises(ValueError, match="not whole frames"):
        frame_window_attention(torch.randn(1, 1, 5, 8), k, k, tokens_per_frame=2)
    with pytest.raises(ValueError, match="backend 'gpu-magic'"):
        frame_window_attention(q, k, k, tokens_per_frame=1, backend="gpu-magic")
