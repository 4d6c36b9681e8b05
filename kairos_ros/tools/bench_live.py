"""kairos-bench live: the shipped profile on held-out recorded episodes, stage by stage, and through
the real world-model node, with the bare action sampler measured in the same run (issue 13).

1. In process, as the node calls the backend: each recorded observation in camera order, timed per
   stage -- image composition (the camera tiles into the model input), message conversion is the
   node's part below, codec encode, history / world-state update (with the context), action
   sampling, output (denormalising), message (ActionChunk built and serialised) -- and, after the
   chunk, the prediction's frame job (frame sampling, decode) when it has one. Beside each chunk
   the bare sampler (`sample_actions` on the same cache and context) is timed, so the overhead of
   everything else is a ratio measured under the same load.
2. Through the real node: world_model_node started with the profile in its own process, the same
   observations published as kairos_msgs/Observation at --rate Hz (stamped with the wall clock),
   each ActionChunk matched to its observation by stamp: Observation publish -> ActionChunk
   received, while the node predicts frames (the profile's num_predicted_frames / video_every) on
   its frame worker. The node's own per-stage percentiles come from its /diagnostics.
Targets: observation -> ActionChunk p50 <= 50 ms and p99 <= 100 ms; bare sampler p50 <= 25 ms.
"""
from __future__ import annotations

import os
import platform
import tempfile
import threading
import time

from kairos_ros.core.diagnostics import LatencyStats

DEFAULT_BAGS = ["data/demo_transfer_cube", "/work/demos/transfer_cube_heldout"]
TARGETS = {"node_p50": 0.050, "node_p99": 0.100, "sampler_p50": 0.025}


def parse_overrides(items: list[str]) -> dict:
    """['flow_steps=5', ...] -> {'flow_steps': 5, ...} (JSON values where they parse)."""
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set '{item}' must look like KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def episode_paths(paths: list[str]) -> list[str]:
    """Each path a bag folder, or a folder of bag folders (every subfolder holding a metadata.yaml);
    a bag whose files have the names of one already listed is the same recording (listed once)."""
    found = []
    for path in paths:
        if os.path.isfile(os.path.join(path, "metadata.yaml")):
            found.append(path)
        elif os.path.isdir(path):
            found += sorted(os.path.join(path, d) for d in os.listdir(path)
                            if os.path.isfile(os.path.join(path, d, "metadata.yaml")))
    out, seen = [], set()
    for path in found:
        names = tuple(sorted(f for f in os.listdir(path) if f != "metadata.yaml"))
        if names not in seen:
            seen.add(names)
            out.append(path)
    return out


def recorded_observations(bag: str, profile, spec) -> list:
    """The bag through the perception pipeline as the perception node would publish it (not composed)."""
    from kairos_ros.core.perception import PerceptionConfig, PerceptionPipeline
    from kairos_ros.lib import bagio
    from kairos_ros.lib.bagsource import select_topics
    from kairos_ros.lib.replay import ReplayHooks, replay

    p = profile.perception
    reader = bagio.open_reader(bag)
    try:
        topics = select_topics(reader, None, None, p["joint_states_topic"])
        pipeline = PerceptionPipeline(PerceptionConfig(
            camera_names=topics.camera_names, joint_names=list(spec.joint_names),
            ignore_joints=list(spec.ignore_joints), layout=p["layout"], tile_width=p["tile_width"],
            tile_height=p["tile_height"], slop=p["slop"], camera_crops=list(p.get("camera_crops") or [])))
        pipeline.instruction = profile.world_model["instruction"]
        out: list = []
        replay(reader, topics, pipeline, p["rate_hz"], ReplayHooks(on_observation=out.append))
    finally:
        reader.close()
    for obs in out:
        obs.layout = p["layout"]
    return out


def _pct(stats: LatencyStats) -> dict:
    return {k: (float(v) if v is not None else None) for k, v in stats.percentiles().items()}


def in_process(profile, spec, episodes: list[list]) -> dict:
    """Part 1: per-stage times and the bare sampler, on this thread."""
    import torch
    from rclpy.serialization import serialize_message

    from kairos_ros.core.observation import ObservationHistory, compose
    from kairos_ros.lib.profile import make_world_backend
    from kairos_ros.model.sampler import sample_actions
    from kairos_ros.nodes.convert import chunk_to_msg

    w = profile.world_model
    backend = make_world_backend(profile, spec)
    horizon, period = w["horizon"], w["step_period"] or spec.default_step_period
    stages: dict[str, LatencyStats] = {}
    total, bare, frame_jobs = LatencyStats(100000), LatencyStats(100000), 0

    def add(name: str, seconds: float) -> None:
        stages.setdefault(name, LatencyStats(100000)).add(seconds)

    for observations in episodes:
        backend.reset()
        history = ObservationHistory(w["history_length"])
        for obs in observations:
            t0 = time.perf_counter()
            obs.composed = compose(obs.layout, obs.camera_names, obs.images)
            composed = time.perf_counter()
            history.add(obs)
            sent = []
            job = backend.predict_deferred(history.snapshot(), horizon, period, lambda chunk: sent.append(
                (time.perf_counter(), serialize_message(chunk_to_msg(chunk, "base_link")), time.perf_counter())))
            add("composition", composed - t0)
            for name, seconds in backend.stages.items():
                add(name, seconds)
            add("message", sent[0][2] - sent[0][0])
            total.add(sent[0][2] - t0)
            with torch.inference_mode():  # the bare sampler on the same cache and context, same thread
                ctx, cm = backend._context(history.snapshot())
                noise = torch.zeros(1, horizon, backend.net.cfg.action.action_dim)
                s0 = time.perf_counter()
                sample_actions(backend.net, backend.cache, ctx, cm, horizon, backend.opts.flow_steps, noise=noise)
                bare.add(time.perf_counter() - s0)
            if job.pending:  # off the chunk's path (the node runs it on its frame worker)
                job.run()
                frame_jobs += 1
                add("frame_sampling", job.stages["frames"])
                add("decode", job.stages["decode"])
    return {"stages": {k: _pct(v) for k, v in stages.items()}, "observation_to_chunk": _pct(total),
            "bare_sampler": _pct(bare), "frame_jobs": frame_jobs, "threads": backend.opts.threads,
            "model": backend.model}


def through_node(profile, spec, episodes: list[list], rate: float, overrides: dict) -> dict:
    """Part 2: the real world-model node in its own process, observations published at `rate` Hz."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile

    from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture
    from kairos_msgs.srv import ResetWorldState
    from kairos_ros.bringup.graph import ProcessSpec
    from kairos_ros.bringup.supervisor import Supervisor
    from kairos_ros.core.domain import claim_domain
    from kairos_ros.core.paths import apply_dds_profile
    from kairos_ros.core.shm import clean_stale_fastdds
    from kairos_ros.lib.rostime import to_sec, to_time
    from kairos_ros.nodes.convert import observation_to_msg

    tmp = tempfile.mkdtemp(prefix="kairos-bench-live-")
    lock_ = None
    if not os.environ.get("ROS_DOMAIN_ID"):
        domain, lock_ = claim_domain()
        os.environ["ROS_DOMAIN_ID"] = str(domain)
    apply_dds_profile(os.environ)
    clean_stale_fastdds()
    sup = Supervisor(log_dir=os.path.join(tmp, "logs"))
    sup.start(ProcessSpec("world_model", "world_model_node", "kairos_ros.nodes.world_model_node", [profile.path],
                          {"embodiment": spec.name, "backend": "kairos", "status_period": 0.5, **overrides}))
    rclpy.init(args=[])
    node = rclpy.create_node("kairos_bench_live")
    lock = threading.Lock()
    published: dict[float, float] = {}
    e2e, diag = LatencyStats(100000), {}
    counts = {"chunks": 0, "unmatched": 0, "futures_with_frames": 0}

    def on_chunk(msg):
        now = time.perf_counter()
        with lock:
            sent = published.pop(to_sec(msg.header.stamp), None)
            counts["chunks"] += 1
            if sent is None:
                counts["unmatched"] += 1
            else:
                e2e.add(now - sent)

    def on_future(msg):
        with lock:
            counts["futures_with_frames"] += bool(msg.frames)

    def on_diag(msg):
        for status in msg.status:
            if status.name.startswith("world_model"):
                with lock:
                    diag.update({kv.key: kv.value for kv in status.values})

    qos = QoSProfile(depth=100)
    node.create_subscription(ActionChunk, "/kairos/action_chunk", on_chunk, qos)
    node.create_subscription(PredictedFuture, "/kairos/predicted_future", on_future, qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, qos)
    pub = node.create_publisher(Observation, "/kairos/observation", 10)
    reset = node.create_client(ResetWorldState, "/world_model/reset_world_state")
    spin = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spin.start()
    sent_total = 0
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and pub.get_subscription_count() < 1:
            if sup.exited():
                raise RuntimeError(f"the world model exited during start-up: {sup.exited()} (logs in {tmp}/logs)")
            time.sleep(0.1)
        if not reset.wait_for_service(timeout_sec=60):
            raise RuntimeError(f"the world model's reset service never appeared (logs in {tmp}/logs)")
        for n, observations in enumerate(episodes):
            reset.call_async(ResetWorldState.Request())
            msgs = [observation_to_msg(o, o.layout, "base_link") for o in observations]  # built once, restamped
            next_at = time.perf_counter() + 0.5
            for i, msg in enumerate(msgs):
                time.sleep(max(0.0, next_at - time.perf_counter()))
                stamp = to_time(node.get_clock().now().nanoseconds * 1e-9)
                msg.header.stamp = msg.joint_state.header.stamp = stamp
                for img in msg.images:
                    img.header.stamp = stamp
                with lock:
                    if n or i >= 10:  # the first episode's first second warms the node up
                        published[to_sec(stamp)] = time.perf_counter()
                pub.publish(msg)
                sent_total += 1
                next_at += 1.0 / rate
        time.sleep(1.5)  # the last chunks and a status period
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        sup.stop_all()
        if lock_ is not None:
            lock_.close()
    with lock:
        return {"observation_to_chunk": _pct(e2e), "published": sent_total, "unanswered": len(published),
                **counts, "node_diagnostics": dict(diag), "logs": os.path.join(tmp, "logs")}


def run_live_bench(profile_path: str, bags: list[str], rate: float, overrides: dict, node: bool = True,
                   max_observations: int | None = None) -> dict:
    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.lib.profile import load_profile

    load = {"before": os.getloadavg()}
    spec = load_embodiment("aloha")
    profile = load_profile(profile_path, "kairos", spec.name, overrides)
    paths = episode_paths(bags)
    if not paths:
        raise ValueError(f"no recorded episodes under {bags}")
    episodes = [recorded_observations(p, profile, spec)[:max_observations] for p in paths]
    part1 = in_process(profile, spec, episodes)
    load["after_in_process"] = os.getloadavg()
    part2 = through_node(profile, spec, episodes, rate, overrides) if node else None
    load["after"] = os.getloadavg()
    result = {"machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                          "loadavg": load, "shared": "other jobs may run on this machine; see loadavg (1/5/15 min)"},
              "profile": profile_path, "overrides": overrides, "episodes": paths,
              "observations": sum(len(e) for e in episodes), "rate_hz": rate, "in_process": part1, "node": part2,
              "ok": True}  # the targets are figures to read (targets_met), not a failure of the command
    _print(result)
    return result


def _print(r: dict) -> None:
    ms = lambda v: f"{v * 1e3:8.2f} ms" if v is not None else "       -   "  # noqa: E731
    p1 = r["in_process"]
    print(f"kairos-bench live on {r['machine']['host']} ({r['machine']['cpus']} CPUs), load average "
          f"{'/'.join(f'{x:.2f}' for x in r['machine']['loadavg']['before'])} before, "
          f"{'/'.join(f'{x:.2f}' for x in r['machine']['loadavg']['after'])} after")
    print(f"{r['profile']} {r['overrides'] or ''}: {p1['model']}, {r['observations']} observations from "
          f"{len(r['episodes'])} held-out episodes, threads {p1['threads']}")
    print(f"{'stage (in process)':44s} {'p50':>11s} {'p99':>11s}")
    for name, v in p1["stages"].items():
        print(f"  {name:42s} {ms(v.get('p50'))} {ms(v.get('p99'))}")
    tot, bare = p1["observation_to_chunk"], p1["bare_sampler"]
    print(f"{'observation -> chunk message (in process)':44s} {ms(tot['p50'])} {ms(tot['p99'])}")
    print(f"{'bare sampler (same cache, same run)':44s} {ms(bare['p50'])} {ms(bare['p99'])}   target p50 <= 25 ms")
    print(f"  overhead ratio (chunk / bare sampler, p50) {tot['p50'] / bare['p50']:.2f}")
    ok = bare["p50"] <= TARGETS["sampler_p50"]
    n = r["node"]
    if n:
        e = n["observation_to_chunk"]
        print(f"{'Observation publish -> ActionChunk (node)':44s} {ms(e.get('p50'))} {ms(e.get('p99'))}   "
              f"target p50 <= 50, p99 <= 100 ms")
        if e.get("p50"):
            print(f"  ratio to the bare sampler (p50) {e['p50'] / bare['p50']:.2f}")
        d = n["node_diagnostics"]
        print(f"  {n['chunks']} chunks for {n['published']} observations ({n['unanswered']} unanswered), "
              f"{n['futures_with_frames']} predicted-frame sets published, {d.get('scheduler.frames_stale', '?')} "
              f"stale frame jobs dropped, frame job p50 {d.get('frames.p50_ms', '?')} ms")
        print("  node stages p50/p99 ms: " + ", ".join(
            f"{k[6:-7]} {d[k]}/{d.get(k[:-7] + '.p99_ms', '?')}" for k in sorted(d) if k.startswith("stage.")
            and k.endswith(".p50_ms")))
        ok = ok and bool(e.get("p50")) and e["p50"] <= TARGETS["node_p50"] and e["p99"] <= TARGETS["node_p99"]
    r["targets_met"] = ok
    print("targets:", "met" if ok else "MISSED")
