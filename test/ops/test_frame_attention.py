"""Frame-windowed attention: masks by hand, the CPU path against the dense reference, the
dispatcher (docs/architecture.md, convention 3). The Triton kernel: test_triton.py."""
import pytest
import torch

from kairos_ros.ops.frame_attention import frame_window_attention, frame_window_mask, select_backend

TOL = 2e-5


def frames_of(mask, p):
    """Token mask -> frame mask (every P-th row and column)."""
    return mask[::p, ::p].int().tolist()


def visible(mask_row):
    return torch.nonzero(mask_row).flatten().tolist()


def test_swa_mask_by_hand():
    swa = frame_window_mask(6, 6, 1, window=3, dilation=1)
    assert [visible(r) for r in swa] == [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5],
                                         [3, 4, 5]]


def test_dswa_mask_by_hand():
    # window 3, dilation 4: df in {0, +-4, +-8}, the Kairos DSWA layer.
    dswa = frame_window_mask(12, 12, 1, window=3, dilation=4)
    assert visible(dswa[0]) == [0, 4, 8]
    assert visible(dswa[4]) == [0, 4, 8]
    assert visible(dswa[9]) == [1, 5, 9]
    assert visible(dswa[8]) == [0, 4, 8]
    assert visible(dswa[11]) == [3, 7, 11]
    assert visible(frame_window_mask(17, 17, 1, window=3, dilation=4)[8]) == [0, 4, 8, 12, 16]
    assert visible(frame_window_mask(8, 8, 1, window=2, dilation=3)[3]) == [0, 3, 6]


def test_causal_history_and_offsets_by_hand():
    causal = frame_window_mask(4, 4, 1, window=3, causal=True)
    assert [visible(r) for r in causal] == [[0], [0, 1], [0, 1, 2], [1, 2, 3]]
    # History frames 0, 1 never see frames >= 2; later frames see history as usual.
    hist = frame_window_mask(4, 4, 2, window=3, num_history_frames=2)
    assert hist.shape == (8, 8)
    assert frames_of(hist, 2) == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 1, 1]]
    assert torch.equal(hist[0], hist[1]) and torch.equal(hist[:, 0], hist[:, 1])  # whole frames
    dswa_hist = frame_window_mask(9, 9, 1, window=3, dilation=4, num_history_frames=3, causal=True)
    assert visible(dswa_hist[0]) == [0] and visible(dswa_hist[2]) == [2]
    assert visible(dswa_hist[4]) == [0, 4] and visible(dswa_hist[8]) == [0, 4, 8]
    # Absolute frame numbers: query frame 5 against key frames 3, 4, 5.
    assert frame_window_mask(1, 3, 1, window=2, q_start_frame=5, k_start_frame=3).tolist() == [[False, True, True]]
    stream = frame_window_mask(1, 9, 1, window=3, dilation=4, q_start_frame=10, k_start_frame=2, causal=True)
    assert visible(stream[0]) == [0, 4, 8]  # frames 2, 6, 10


def make(fq, fk, p, d, seed=0, b=2, h=3):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, fq * p, d, generator=gen), torch.randn(b, h, fk * p, d, generator=gen),
            torch.randn(b, h, fk * p, d, generator=gen))


CASES = {
    "swa": (dict(window=3), 11, 11),
    "dswa": (dict(window=3, dilation=4), 13, 13),
    "causal": (dict(window=3, causal=True), 9, 9),
    "history": (dict(window=2, num_history_frames=3), 8, 8),
    "dswa_history_causal": (dict(window=3, dilation=4, num_history_frames=2, causal=True), 10, 10),
    "dilated_causal": (dict(window=3, dilation=2, causal=True), 9, 9),
    "stream_offsets": (dict(window=3, dilation=4, q_start_frame=10, k_start_frame=2, causal=True), 2, 9),
    "window_1": (dict(window=1), 4, 4),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("d", [16, 32])
def test_cpu_matches_reference(name, d):
    kw, fq, fk = CASES[name]
    q, k, v = make(fq, fk, 5, d, seed=len(name) + d)
    ref = frame_window_attention(q, k, v, tokens_per_frame=5, backend="naive", **kw)
    out = frame_window_attention(q, k, v, tokens_per_frame=5, backend="cpu", **kw)
    assert not torch.isnan(out).any(), "an output element was never written"
    assert ((out - ref).abs().max() / ref.abs().max()).item() < TOL


def test_cpu_accepts_strided_views_and_scale():
    q, k, v = make(6, 6, 5, 16, seed=3)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)  # (B, H, N, D) view of a (B, N, H, D) tensor
    ref = frame_window_attention(q, k, v, tokens_per_frame=5, window=2, scale=0.3, backend="naive")
    out = frame_window_attention(qt, k, v, tokens_per_frame=5, window=2, scale=0.3, backend="cpu")
    assert ((out - ref).abs().max() / ref.abs().max()).item() < TOL


@pytest.mark.parametrize("backend", ["naive", "cpu"])
def test_rows_without_keys_are_zero(backend):
    # Query frames 5, 6 against key frames 0, 1 with window 1: nothing visible.
    q, k, v = make(2, 2, 3, 8, seed=1)
    out = frame_window_attention(q, k, v, tokens_per_frame=3, window=1, q_start_frame=5, backend=backend)
    assert torch.equal(out, torch.zeros_like(out))
    # Frame 5 sees key frame 5 only, frame 6 sees nothing: zeros there, attention elsewhere.
    out = frame_window_attention(q, k, v, tokens_per_frame=3, window=1, q_start_frame=5, k_start_frame=4,
                                 backend=backend)
    assert torch.equal(out[:, :, 3:], torch.zeros_like(out[:, :, 3:])) and out[:, :, :3].abs().sum() > 0


def test_dispatcher():
    assert select_backend("auto", is_cuda=False) == "cpu"
    assert select_backend("auto", is_cuda=True) == "triton"
    assert select_backend("naive", is_cuda=True) == "naive"
    q, k, v = make(3, 3, 2, 8)
    auto = frame_window_attention(q, k, v, tokens_per_frame=2)
    assert torch.equal(auto, frame_window_attention(q, k, v, tokens_per_frame=2, backend="cpu"))


def test_errors():
    q, k, v = make(2, 2, 2, 8)
    with pytest.raises(ValueError, match="not whole frames"):
        frame_window_attention(q[:, :, :3], k, v, tokens_per_frame=2)
    with pytest.raises(ValueError, match="backend 'gpu-magic'"):
        frame_window_attention(q, k, v, tokens_per_frame=2, backend="gpu-magic")
    with pytest.raises(ValueError, match="window and dilation"):
        frame_window_attention(q, k, v, tokens_per_frame=2, window=0)
    with pytest.raises(ValueError, match="expected q"):
        frame_window_attention(q, k[..., :4], v, tokens_per_frame=2)
