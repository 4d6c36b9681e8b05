"""Adapter benchmark: per-chunk processing time for each embodiment.

Measures what the adapter node does for one ActionChunk message: decode, validate, drop past
points, blend with the previous plan, recompute velocities, run the safety gates and build the
JointTrajectory message (publishing excluded: that is DDS, not the adapter).
"""
from __future__ import annotations

import time

import numpy as np

from kairos_ros.core.adapter import plan_chunk
from kairos_ros.core.blending import AbsolutePlan, ChunkBlender
from kairos_ros.core.diagnostics import latency_percentiles
from kairos_ros.core.embodiment import list_embodiments, load_embodiment, state_to_slots
from kairos_ros.core.safety import SafetyLimits, SafetyState
from kairos_ros.core.trajectory import replan_positions
from kairos_ros.core.types import ActionChunkData
from kairos_ros.nodes.convert import chunk_from_msg, chunk_to_msg, plan_to_msg


def _chunks(spec, n: int, horizon: int, period: float):
    rng = np.random.default_rng(0)
    mid = (spec.lower + spec.upper) / 2
    for i in range(n):
        drift = 0.002 * np.cumsum(rng.standard_normal((horizon, len(mid))), axis=0)
        yield ActionChunkData(i * period, spec.name, list(spec.slot_names), state_to_slots(spec, mid + drift), period)


def bench_embodiment(name: str, iterations: int, horizon: int = 32) -> dict:
    spec = load_embodiment(name)
    period = spec.default_step_period
    blender = ChunkBlender("rtc", 0.2)
    safety = SafetyState(spec, SafetyLimits(max_start_jump=1.0, max_step=1.0, velocity_tolerance=10.0,
                                            acceleration_tolerance=10.0))
    current = (spec.lower + spec.upper) / 2
    samples = []
    msgs = [chunk_to_msg(c) for c in _chunks(spec, iterations + 20, horizon, period)]
    for i, msg in enumerate(msgs):
        now = i * period + 0.012  # 12 ms after the observation: the first row is still ahead
        start = time.perf_counter()
        chunk = chunk_from_msg(msg)
        plan = plan_chunk(chunk, spec, current, now, max_age=0.5)
        blended = blender.blend(AbsolutePlan(chunk.stamp, now + plan.times, plan.positions))
        plan = replan_positions(plan, blended, spec, current)
        safety.check_plan(plan, current)
        plan_to_msg(plan, now)
        if i >= 20:  # warm-up excluded
            samples.append(time.perf_counter() - start)
    return {"joints": len(spec.joint_names), "horizon": horizon, **latency_percentiles(samples)}


def run_adapter_bench(iterations: int) -> dict:
    results = {name: bench_embodiment(name, iterations) for name in list_embodiments()}
    print("kairos-bench adapter: per-chunk processing (horizon 32, rtc blending, gates, message build)")
    print(f"{'embodiment':16s} {'joints':>6s} {'p50':>10s} {'p99':>10s}")
    for name, r in results.items():
        print(f"{name:16s} {r['joints']:6d} {r['p50'] * 1e3:8.3f} ms {r['p99'] * 1e3:8.3f} ms")
    hand = results.get("shadow_hand")
    ok = hand is not None and hand["p99"] <= 1e-3
    print("target (shadow_hand p99 <= 1 ms):", "met" if ok else "MISSED")
    return {"embodiments": results, "targets_met": ok, "ok": True}
