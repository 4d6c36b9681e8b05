"""Data-parallel training: two gloo processes on 127.0.0.1, each computing half of the batch, make
the same parameter update as one process on the whole batch (codec and world-action model steps)."""
from __future__ import annotations

import os
import socket
from dataclasses import replace

import numpy as np
import torch

STEPS = 2


def _setup():
    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.model.codecs import HashTextEncoder
    from kairos_ros.model.config import get_preset
    from kairos_ros.model.wam import KairosWAM
    from kairos_ros.train.data import Episode, EpisodeConfig, slot_statistics
    from kairos_ros.train.loop import TrainConfig

    torch.set_num_threads(1)
    arm = load_embodiment("single_arm")
    eps = [Episode(arm, EpisodeConfig(("head",), "single", 32, 32, duration=2.0), s) for s in (1001, 1002)]
    eps[1].instruction = "push the block"  # rows with different instructions: padded text tokens
    cfg = TrainConfig(history_frames=2, future_frames=1, horizon=4, batch=4, codec_steps=STEPS, steps=STEPS,
                      warmup=1, state_velocity=3, log_every=100)
    stats = slot_statistics(eps, 4, cfg.step_period, state_velocity=3, samples=20)
    base = get_preset("kairos-test")
    torch.manual_seed(0)
    model = KairosWAM(replace(base, action=replace(base.action, action_dim=arm.dim, state_dim=2 * arm.dim)))
    text = HashTextEncoder(base.video.text_dim)
    return eps, cfg, stats, model, text


def _train(par):
    from kairos_ros.train.loop import encode_episodes, train_codec, train_wam

    eps, cfg, stats, model, text = _setup()
    losses = []
    hook = lambda step, values, state: losses.append(values["loss"]) and False  # noqa: E731
    torch.manual_seed(0)
    codec = train_codec(eps, cfg, lambda s: None, par, hook=hook)
    latents = encode_episodes(codec, eps)
    train_wam(model, text, eps, latents, stats, ["pick it", "push the block"], cfg, lambda s: None, par, hook=hook)
    params = {f"codec.{k}": v for k, v in codec.state_dict().items()}
    params.update({f"wam.{k}": v for k, v in model.state_dict().items()})
    params.update({f"text.{k}": v for k, v in text.state_dict().items()})
    return {k: v.detach().clone() for k, v in params.items()}, losses


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from kairos_ros.train.loop import Parallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        params, losses = _train(Parallel(rank, world))
        torch.save({"params": params, "losses": losses}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    import torch.multiprocessing as mp

    from kairos_ros.train.loop import Parallel

    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single, losses = _train(Parallel(0, 1))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for k, v in single.items():
        for r in ranks:
            assert torch.allclose(r["params"][k], v, rtol=1e-4, atol=1e-5), k
    assert all(torch.equal(ranks[0]["params"][k], ranks[1]["params"][k]) for k in single)  # the ranks agree exactly
    assert np.allclose(ranks[0]["losses"], losses, rtol=1e-4) and len(losses) == 2 * STEPS
    init = _setup()[3].state_dict()  # the update is real: parameters moved from their initial values
    assert any(not torch.equal(init[k], single[f"wam.{k}"]) for k in init)
