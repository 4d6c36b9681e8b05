"""kairos-bench serve --ray: the batching gain of kairos-serve --ray's deployment, in one run.

N simulated robots (lib/synthetic.py: smooth joint motion and a camera scene that moves with it,
each robot its own seed), one thread each, ask back to back for chunks through the gateway's
RayBackend (the class kairos-serve --ray's sessions use; the websocket hop in front of it is what
`kairos-bench serve` measures). Two deployments of the same model on the same private local Ray,
one after the other with the same resources (one replica): unbatched (max_batch_size 1) and batched
(max_batch_size N, waiting up to 250 ms to fill a batch: the N robot threads of this one process
resubmit one after another under the GIL, and a shorter wait runs half-empty batches). The figure is batched throughput / unbatched throughput (issue 14 asks >= 2x
for 16 robots on kairos-nano), with each side's chunk latency percentiles.
"""
from __future__ import annotations

import os
import threading
import time

import yaml

from kairos_ros.core.diagnostics import latency_percentiles
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.tools.bench_serve import run_together

TARGET_GAIN = 2.0


class SimRobot:
    """One simulated robot's observation stream (10 Hz) at the model's image size."""

    def __init__(self, spec, seed: int, width: int, height: int, instruction: str, keep: int):
        from kairos_ros.lib.synthetic import JointMotion, Scene

        self.spec, self.instruction, self.keep = spec, instruction, keep
        self.motion = JointMotion(list(spec.joint_names), spec.lower, spec.upper, seed)
        self.scene = Scene("head", 0, width, height, list(spec.joint_names), seed)
        self.history: list = []
        self.t = 1.0

    def step(self) -> list:
        self.t += 0.1
        q, dq = self.motion.state(self.t)
        frame = self.scene.render(self.motion.normalised(self.t)[0])
        obs = ObservationData(self.t, ["head"], [frame], JointStateData(self.t, list(self.spec.joint_names), q[0], dq[0]),
                              instruction=self.instruction, composed=frame)
        self.history = (self.history + [obs])[-self.keep:]
        return self.history


def _drive(backends, robots, horizon: int, period: float, seconds: float) -> dict:
    times = [[] for _ in backends]
    errors: list = []
    barrier = threading.Barrier(len(backends))

    def run(k):
        barrier.wait()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            history = robots[k].step()
            t0 = time.perf_counter()
            try:
                backends[k].predict(history, horizon, period)
            except (ValueError, RuntimeError) as exc:
                errors.append(str(exc))
                return
            times[k].append(time.perf_counter() - t0)

    took = run_together([lambda k=k: run(k) for k in range(len(backends))])
    if errors:
        raise RuntimeError(f"{len(errors)} robots failed: {errors[0]}")
    lat = latency_percentiles([x for xs in times for x in xs])
    return {"chunks": lat["count"], "seconds": round(took, 2), "throughput_hz": round(lat["count"] / took, 2),
            "chunk_p50_ms": round(lat["p50"] * 1000, 1), "chunk_p99_ms": round(lat["p99"] * 1000, 1)}


def run_ray_bench(seconds: float = 30.0, robots: int = 16, config: str = "config/aloha.yaml",
                  num_cpus: int = 0, batch_wait_ms: float = 250.0) -> dict:
    from kairos_ros.backends.kairos_options import KAIROS_KEYS
    from kairos_ros.serve.ray_serve import RayBackend, RayOptions, deploy, start_ray

    with open(config) as f:
        wm = yaml.safe_load(f)["world_model"]["ros__parameters"]
    params = {k: v for k, v in wm.items() if k in KAIROS_KEYS}
    if params.get("temporal_mode") != "official":
        raise ValueError(f"{config}: the Ray deployment serves temporal_mode official only")
    spec = load_embodiment(wm.get("embodiment") or os.path.splitext(os.path.basename(config))[0])
    cpus = num_cpus or os.cpu_count() or 1
    ray = start_ray(cpus)
    from ray import serve

    rows = {}
    try:
        for label, batch in (("unbatched", 1), ("batched", robots)):
            options = RayOptions(max_batch_size=batch, batch_wait_ms=batch_wait_ms if batch > 1 else 0.0,
                                 replica_cpus=float(cpus), timeout=600.0)
            handle, info = deploy(spec.name, params, options, name=f"bench-{label}")
            horizon = info["required_horizon"] or wm.get("horizon", 32)
            period = wm.get("step_period") or spec.default_step_period
            sims = [SimRobot(spec, 100 + k, params["image_width"], params["image_height"], wm.get("instruction", ""),
                             info["frames_needed"]) for k in range(robots)]
            backends = [RayBackend(spec, handle, info, seed=k, timeout=600.0) for k in range(robots)]
            for sim in sims:  # fill each robot's history; one warm-up chunk outside the timing
                for _ in range(info["frames_needed"] - 1):
                    sim.step()
            backends[0].predict(sims[0].step(), horizon, period)
            rows[label] = _drive(backends, sims, horizon, period, seconds)
            sizes = handle.batch_sizes.remote().result()[1:]
            rows[label]["mean_batch"] = round(sum(sizes) / max(len(sizes), 1), 2)
            serve.delete(f"bench-{label}")
    finally:
        serve.shutdown()
        ray.shutdown()
    gain = rows["batched"]["throughput_hz"] / max(rows["unbatched"]["throughput_hz"], 1e-9)
    result = {"robots": robots, "model": info["model"], "config": config, "seconds_per_run": seconds,
              "replica_cpus": cpus, "batch_wait_ms": batch_wait_ms, **rows, "gain": round(gain, 2),
              "machine": {"cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2)},
              "target": {"gain_min": TARGET_GAIN, "met": gain >= TARGET_GAIN}, "ok": True}
    print_table(result)
    return result


def print_table(r: dict) -> None:
    print(f"kairos-bench serve --ray: {r['robots']} simulated robots, {r['model']}, one replica on "
          f"{r['replica_cpus']} CPUs (load {r['machine']['loadavg_1min']})")
    for label in ("unbatched", "batched"):
        x = r[label]
        print(f"  {label:10s} {x['throughput_hz']:7.2f} chunks/s  ({x['chunks']} in {x['seconds']} s, mean batch "
              f"{x['mean_batch']}, chunk p50 {x['chunk_p50_ms']} ms, p99 {x['chunk_p99_ms']} ms)")
    print(f"  gain {r['gain']}x (target >= {r['target']['gain_min']}x: {'met' if r['target']['met'] else 'MISSED'})")
