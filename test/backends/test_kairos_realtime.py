"""The kairos backend's real-time path computes what it computed before (issue 13): the chunk by
action mode over a history encoded only as far as the action expert reads, the predicted frames
as a FrameJob over snapshots with its noise drawn ahead, run later (on another thread) -- against
the earlier recipe written out here from the model's functions (every layer re-encoded, the joint
video+action loop's actions, noise drawn on demand from one generator). A variant that draws the
frames' noise when the job runs (not ahead) is caught by the same comparison."""
import threading

import numpy as np
import pytest
import torch

from kairos_helpers import obs
from kairos_ros.backends import kairos_backend, make_backend
from kairos_ros.model.future import sample_official, sample_streaming, to_rgb8
from kairos_ros.model.sampler import sample_actions
from kairos_ros.model.world_state import WorldState

OPTS = dict(allow_random_weights=True, flow_steps=3, num_predicted_frames=2, video_every=2, action_noise_scale=1.0,
            seed=5, history_frames=2)
N, HORIZON, PERIOD = 5, 8, 0.05


def make(spec, mode):
    return make_backend("kairos", spec, **{**OPTS, "temporal_mode": mode})


def histories(spec):
    seq = [obs(spec, 1.0 + 0.1 * i, q=np.full(14, 0.05 * i)) for i in range(N)]
    return [seq[:i + 1] for i in range(N)]


def earlier_recipe(b, mode):
    """What the backend computed before issue 13, prediction by prediction."""
    net, codec, gen = b.net, b.codec, torch.Generator().manual_seed(OPTS["seed"])
    kept, state, out = [], WorldState(action_frames=OPTS["history_frames"]), []
    with torch.inference_mode():
        for i, history in enumerate(histories(b.spec)):
            ctx, cm = b._context(history)
            pixels = torch.from_numpy(np.ascontiguousarray(history[-1].composed))[None]
            latent = codec.encode(pixels.permute(0, 3, 1, 2).float() / 127.5 - 1)
            if mode == "official":
                # the first prediction: the one observation repeated as history (KairosBackend.at_rest)
                kept = ((kept or [latent] * (OPTS["history_frames"] - 1)) + [latent])[-OPTS["history_frames"]:]
                lat = torch.cat(kept, 2)
                cache = net.encode_history(lat, ctx, cm)[0]  # every layer
            else:
                cache = net.stream_step(latent, ctx, cm, state)[0]
            noise = torch.randn(1, HORIZON, net.cfg.action.action_dim, generator=gen) * OPTS["action_noise_scale"]
            future = None
            if i % OPTS["video_every"] == 0 and mode == "official":  # the joint loop gave both
                future, actions = sample_official(net, lat, ctx, cm, 2, OPTS["flow_steps"], gen, "euler", HORIZON,
                                                  action_noise=noise)
            else:
                actions = sample_actions(net, cache, ctx, cm, HORIZON, OPTS["flow_steps"], noise=noise)
                if i % OPTS["video_every"] == 0:
                    shape = (1, latent.shape[1]) + tuple(latent.shape[3:])
                    future = sample_streaming(net, state, shape, ctx, cm, 2, OPTS["flow_steps"], gen, "euler")
            frames = [] if future is None else to_rgb8(codec.decode_future(latent, future))
            out.append((b._to_slots(actions), frames))
    return out


def mismatch(got, ref) -> list[str]:
    bad = []
    for i, ((values, frames), (rv, rf)) in enumerate(zip(got, ref)):
        if not np.allclose(values, rv, rtol=1e-4, atol=1e-5):
            bad.append(f"chunk {i}: max diff {np.abs(values - rv).max():.3g}")
        if len(frames) != len(rf) or any(np.abs(a.astype(int) - r.astype(int)).max() > 1 for a, r in zip(frames, rf)):
            bad.append(f"frames {i}")
    return bad


def deferred(b):
    """Chunks first, every frame job run afterwards on another thread, newest first."""
    jobs = [b.predict_deferred(h, HORIZON, PERIOD, lambda chunk: None) for h in histories(b.spec)]
    results = {}
    worker = threading.Thread(target=lambda: results.update({i: j.run() for i, j in reversed(list(enumerate(jobs)))}))
    worker.start()
    worker.join(60)
    assert all(j.pending == (i % OPTS["video_every"] == 0) for i, j in enumerate(jobs))
    assert {"encode", "history", "sample", "output"} <= set(jobs[0].stages) and "frames" in jobs[0].stages
    return [(j.chunk.values, results[i][0]) for i, j in enumerate(jobs)]


@pytest.mark.parametrize("mode", ["official", "streaming"])
def test_inline_and_deferred_equal_the_earlier_recipe(specs, mode):
    spec = specs["dual"]
    ref = earlier_recipe(make(spec, mode), mode)
    b = make(spec, mode)
    inline = [(p.chunk.values, p.frames) for p in (b.predict(h, HORIZON, PERIOD) for h in histories(spec))]
    assert not mismatch(inline, ref)
    assert not mismatch(deferred(make(spec, mode)), ref)
    assert sum(len(f) for _, f in ref) == 2 * 3  # predictions 0, 2 and 4 have frames


def test_noise_drawn_when_the_job_runs_is_caught(specs, monkeypatch):
    """The deliberately wrong variant: frame noise taken from the generator when the job runs."""
    class Lazy:
        def __init__(self, generator, shapes):
            self.generator = generator

        def take(self, shape, dtype=torch.float32):
            return torch.randn(tuple(shape), generator=self.generator, dtype=dtype)

    spec = specs["dual"]
    ref = earlier_recipe(make(spec, "official"), "official")
    monkeypatch.setattr(kairos_backend, "NoiseQueue", Lazy)
    monkeypatch.setattr("kairos_ros.model.sampler.NoiseQueue", Lazy)
    assert mismatch(deferred(make(spec, "official")), ref)
