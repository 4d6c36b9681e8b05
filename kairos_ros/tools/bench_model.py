"""Model benchmark: streaming step vs full recompute, frame-attention scaling, nano chunk latency,
the cost of one predicted frame, and the 4B preset's size (meta device). Random weights: speed does not depend on their values."""
from __future__ import annotations

import time

import torch

from kairos_ros.core.diagnostics import latency_percentiles
from kairos_ros.model.codecs import ConvCodec
from kairos_ros.model.config import get_preset
from kairos_ros.model.future import sample_streaming
from kairos_ros.model.sampler import sample_actions
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState
from kairos_ros.ops.frame_attention import frame_window_attention


def _timed(fn, repeat: int, warmup: bool = True) -> list[float]:
    if warmup:
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def streaming_vs_recompute(model, lengths=(8, 64, 256), latent_hw=(16, 16), repeat=5) -> dict:
    cfg = model.cfg
    ctx, cm = model.context(torch.randn(1, 8, cfg.video.text_dim), torch.randn(1, cfg.action.state_dim))
    frame = torch.randn(1, 16, 1, *latent_hw)
    res = {}
    for n in lengths:
        state = WorldState()
        for _ in range(n - 1):  # history of n - 1 frames, then time the n-th
            model.stream_step(frame, ctx, cm, state)
        snapshot = (state.frames, dict(state.kv), dict(state.gdn))

        def step():
            state.frames, state.kv, state.gdn = snapshot[0], dict(snapshot[1]), dict(snapshot[2])
            model.stream_step(frame, ctx, cm, state)
        stream = latency_percentiles(_timed(step, repeat))
        # Full recompute is measured once (no warm-up: the modules are warm from streaming).
        full = latency_percentiles(_timed(lambda: model.encode_history(torch.randn(1, 16, n, *latent_hw), ctx, cm,
                                                                        causal=True), 1, warmup=False))
        res[n] = {"streaming_step": stream, "full_recompute": full}
    return res


def frame_attention_scaling(repeat=20) -> dict:
    out = {}
    for frames in (8, 64):
        q, k, v = (torch.randn(1, 2, frames * 16, 64) for _ in range(3))
        for backend in ("cpu", "naive"):
            t = _timed(lambda: frame_window_attention(q, k, v, tokens_per_frame=16, backend=backend), repeat)
            out[f"{backend}@{frames}"] = latency_percentiles(t)
    return out


def nano_chunk_latency(model, repeat=20, horizon=32, steps=10, latent_hw=(48, 40)) -> dict:
    cfg = model.cfg
    ctx, cm = model.context(torch.randn(1, 8, cfg.video.text_dim), torch.randn(1, cfg.action.state_dim))
    state = WorldState()
    frame = torch.randn(1, 16, 1, *latent_hw)
    for _ in range(9):
        cache, _ = model.stream_step(frame, ctx, cm, state)
    gen = torch.Generator().manual_seed(0)
    chunk = _timed(lambda: sample_actions(model, cache, ctx, cm, horizon, steps, generator=gen), repeat)
    snapshot = (state.frames, dict(state.kv), dict(state.gdn))

    def new_frame():
        state.frames, state.kv, state.gdn = snapshot[0], dict(snapshot[1]), dict(snapshot[2])
        model.stream_step(frame, ctx, cm, state)
    return {"chunk": latency_percentiles(chunk), "frame_step": latency_percentiles(_timed(new_frame, repeat // 2))}


def nano_frame_latency(model, repeat=3, steps=10, latent_hw=(48, 40)) -> dict:
    """One predicted frame (streaming mode, Euler steps with the video shift) decoded by the nano codec."""
    cfg = model.cfg
    ctx, cm = model.context(torch.randn(1, 8, cfg.video.text_dim), torch.randn(1, cfg.action.state_dim))
    state, codec = WorldState(), ConvCodec().eval()
    frame = torch.randn(1, 16, 1, *latent_hw)
    for _ in range(9):
        model.stream_step(frame, ctx, cm, state)
    gen = torch.Generator().manual_seed(0)

    def predict():
        future = sample_streaming(model, state, (1, 16) + latent_hw, ctx, cm, 1, steps, gen)
        codec.decode_future(frame, future)
    return latency_percentiles(_timed(predict, repeat))


def four_b_size() -> dict:
    with torch.device("meta"):
        model = KairosWAM(get_preset("kairos-4b-wam"))
    video = sum(p.numel() for p in model.video_dit.parameters())
    action = sum(p.numel() for p in model.action_dit.parameters())
    return {"video_params": video, "action_params": action, "bf16_weights_gib": (video + action) * 2 / 2 ** 30}


def run_model_bench(repeat: int = 5, lengths=(8, 64, 256)) -> dict:
    torch.manual_seed(0)
    with torch.no_grad():
        nano = KairosWAM(get_preset("kairos-nano")).eval()
        stream = streaming_vs_recompute(nano, lengths=lengths, repeat=repeat)
        attn = frame_attention_scaling()
        chunk = nano_chunk_latency(nano, repeat=4 * repeat)
        frames = nano_frame_latency(nano, repeat=max(1, repeat // 2))
    size = four_b_size()
    ms = lambda x: f"{x * 1e3:9.2f} ms"  # noqa: E731
    print("kairos-bench model (kairos-nano, random weights, 2-core CPU)")
    print(f"{'history':>8s} {'streaming step p50':>20s} {'full recompute p50':>20s}")
    for n, r in stream.items():
        print(f"{n:8d} {ms(r['streaming_step']['p50']):>20s} {ms(r['full_recompute']['p50']):>20s}")
    ratio = stream[lengths[-1]]["streaming_step"]["p50"] / stream[lengths[0]]["streaming_step"]["p50"]
    print(f"streaming {lengths[-1]}-frame / {lengths[0]}-frame step: {ratio:.2f} (target <= 1.25 for 256 / 8)")
    a_ratio = attn["cpu@64"]["p50"] / attn["cpu@8"]["p50"]
    d_ratio = attn["naive@64"]["p50"] / attn["naive@8"]["p50"]
    print(f"frame attention 64 / 8 frames: {a_ratio:.1f} (target <= 10; dense masked SDPA {d_ratio:.1f})")
    c = chunk["chunk"]
    print(f"nano action chunk (horizon 32, 10 flow steps): p50 {ms(c['p50'])} p99 {ms(c['p99'])} "
          f"(targets 50 / 100 ms); new-frame streaming step p50 {ms(chunk['frame_step']['p50'])}")
    print(f"nano predicted frame (streaming, 10 Euler steps, decoded): p50 {ms(frames['p50'])}")
    print(f"4B preset: {size['video_params']:,} video + {size['action_params']:,} action parameters, "
          f"{size['bf16_weights_gib']:.2f} GiB of bf16 weights")
    targets = {"streaming_ratio": ratio <= 1.25, "frame_attention_ratio": a_ratio <= 10,
               "nano_p50": c["p50"] <= 0.05, "nano_p99": c["p99"] <= 0.10}
    print("targets:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in targets.items()))
    return {"streaming": {str(k): v for k, v in stream.items()}, "streaming_ratio": ratio, "frame_attention": attn,
            "frame_attention_ratio": a_ratio, "nano": chunk, "nano_frame": frames, "size_4b": size, "targets": targets,
            "ok": True}
