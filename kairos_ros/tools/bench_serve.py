"""kairos-bench serve: remote inference against the same model in-process, in the same run.

For 1, 4 and 16 simulated robots (one thread each, predicting back to back for a bounded time with
an ALOHA-sized observation, 128x144 composed frame, raw): the in-process figures come from one
backend per robot in this process, the remote ones from one `remote` backend per robot talking to
a kairos-serve process on loopback (bearer token, as deployed). The figure is the ratio, and the
time the hop adds at the median: the chunk's latency (observation sent -> chunk in hand, what the
robot waits for) and the whole prediction's (with the predicted frames, when the profile has any).
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time

import numpy as np

from kairos_ros.core.diagnostics import latency_percentiles
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData

TARGET_ADDED_P50_MS = 2.0  # issue 14: with hold, the hop adds at most this much at the median on loopback


def _observation(spec, stamp: float, size) -> ObservationData:
    q = (np.asarray(spec.lower) + np.asarray(spec.upper)) / 2
    frame = np.full((size[1], size[0], 3), 100, np.uint8)
    return ObservationData(stamp, ["composed"], [frame], JointStateData(stamp, list(spec.joint_names), q), "", frame)


def _robot(backend, spec, served, seconds: float, size, chunk_times: list, whole_times: list, start: threading.Barrier):
    history = []
    start.wait()
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        i += 1
        history = (history + [_observation(spec, 1000.0 + 0.05 * i, size)])[-8:]
        t0 = time.perf_counter()
        got = []
        backend.predict_staged(history, served.horizon, served.step_period, lambda _c: got.append(time.perf_counter()))
        t1 = time.perf_counter()
        chunk_times.append(got[0] - t0)
        whole_times.append(t1 - t0)


def run_together(targets) -> float:
    """Run each callable on a thread of its own (one per simulated robot) and wait for all; the
    wall-clock seconds they took together."""
    threads = [threading.Thread(target=target) for target in targets]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _run(backends, spec, served, seconds: float, size) -> dict:
    chunk, whole = [[] for _ in backends], [[] for _ in backends]
    barrier = threading.Barrier(len(backends))
    took = run_together([lambda i=i, b=b: _robot(b, spec, served, seconds, size, chunk[i], whole[i], barrier)
                         for i, b in enumerate(backends)])
    c = latency_percentiles([x for xs in chunk for x in xs])
    w = latency_percentiles([x for xs in whole for x in xs])
    return {"predictions": c["count"], "throughput_hz": round(c["count"] / took, 1),
            "chunk_p50_ms": round(c["p50"] * 1000, 3), "chunk_p99_ms": round(c["p99"] * 1000, 3),
            "whole_p50_ms": round(w["p50"] * 1000, 3), "whole_p99_ms": round(w["p99"] * 1000, 3)}


def _start_server(config: str, backend: str, robots: int, env: dict) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "kairos_ros.serve.cli", "--config", config, "--port", "0",
           "--max-sessions", str(robots), *(["--backend", backend] if backend else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = proc.stdout.readline()
    m = re.search(r" on (ws://127\.0\.0\.1:\d+) ", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"kairos-serve did not start: {line.strip()!r}")
    return proc, m.group(1)


def run_serve_bench(seconds: float, robots=(1, 4, 16), config: str = "config/aloha.yaml", backend: str = "hold",
                    encoding: str = "raw") -> dict:
    from kairos_ros.backends import make_backend
    from kairos_ros.serve.cli import served_model

    served = served_model(config, backend, "")
    spec = load_embodiment(served.embodiment)
    size = (served.image_width or 128, served.image_height or 144)
    token = secrets.token_hex(16)
    env = {**os.environ, "KAIROS_SERVE_TOKEN": token, "KAIROS_REMOTE_TOKEN": token}
    os.environ["KAIROS_REMOTE_TOKEN"] = token
    proc, url = _start_server(config, backend, max(robots), env)
    rows = []
    try:
        for n in robots:
            local = _run([served.make_backend() for _ in range(n)], spec, served, seconds, size)
            remotes = [make_backend("remote", spec, num_predicted_frames=served.num_predicted_frames,
                                    horizon=served.horizon, step_period=served.step_period, remote_url=url,
                                    remote_reply_timeout=30.0, remote_image_encoding=encoding) for _ in range(n)]
            try:
                remote = _run(remotes, spec, served, seconds, size)
            finally:
                for r in remotes:
                    r.close()
            rows.append({"robots": n, "in_process": local, "remote": remote,
                         "added_chunk_p50_ms": round(remote["chunk_p50_ms"] - local["chunk_p50_ms"], 3),
                         "ratio_chunk_p50": round(remote["chunk_p50_ms"] / max(local["chunk_p50_ms"], 1e-6), 1),
                         "added_whole_p50_ms": round(remote["whole_p50_ms"] - local["whole_p50_ms"], 3)})
    finally:
        os.environ.pop("KAIROS_REMOTE_TOKEN", None)
        proc.terminate()
        proc.wait(10)
    one = rows[0]
    result = {"backend": served.backend, "model": served.model, "config": config, "seconds_per_run": seconds,
              "encoding": encoding, "frame": list(size), "predicted_frames": served.num_predicted_frames,
              "machine": {"cpus": os.cpu_count(), "loadavg_1min": round(os.getloadavg()[0], 2)},
              "rows": rows, "target": {"added_chunk_p50_ms_max": TARGET_ADDED_P50_MS, "robots": one["robots"],
                                       "met": one["added_chunk_p50_ms"] <= TARGET_ADDED_P50_MS}, "ok": True}
    print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"kairos-bench serve: {result['backend']} ({result['model']}), {result['seconds_per_run']} s per run, "
          f"{result['frame'][0]}x{result['frame'][1]} {result['encoding']} frames, "
          f"{result['predicted_frames']} predicted frames; {result['machine']['cpus']} CPUs, "
          f"load {result['machine']['loadavg_1min']}")
    head = f"{'robots':>6} {'where':>10} {'chunk p50':>10} {'chunk p99':>10} {'whole p50':>10} {'pred/s':>8}"
    print(head)
    for row in result["rows"]:
        for where in ("in_process", "remote"):
            r = row[where]
            print(f"{row['robots']:>6} {where:>10} {r['chunk_p50_ms']:>8.3f}ms {r['chunk_p99_ms']:>8.3f}ms "
                  f"{r['whole_p50_ms']:>8.3f}ms {r['throughput_hz']:>8.1f}")
        print(f"{'':>6} {'hop adds':>10} {row['added_chunk_p50_ms']:>8.3f}ms {'':>10} {row['added_whole_p50_ms']:>8.3f}ms"
              f"   (chunk p50 x{row['ratio_chunk_p50']})")
    t = result["target"]
    print(f"target: the hop adds <= {t['added_chunk_p50_ms_max']} ms to the chunk's p50 with {t['robots']} robot: "
          f"{'met' if t['met'] else 'MISSED'}")
