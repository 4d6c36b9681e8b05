"""kairos-bench: benchmarks that print their figures (and write them as JSON).

    kairos-bench pipeline [--seconds 20] [--out out/bench]
    kairos-bench adapter [--iterations 500]
    kairos-bench model [--repeat 5]
    kairos-bench serve [--seconds 5] [--robots 1 4 16]
    kairos-bench serve --ray [--seconds 30] [--robots 16]
    kairos-bench live [--profile config/aloha.yaml] [--bags BAG_OR_FOLDER ...] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="kairos-bench", description="kairos_ros benchmarks")
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pipeline", help="image conversion and camera-to-trajectory latency (hold backend)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to stream frames (default 20)")
    p.add_argument("--rate", type=float, default=20.0, help="camera rate in Hz (default 20)")
    p.add_argument("--iterations", type=int, default=300, help="conversion repetitions (default 300)")
    p.add_argument("--out", default="out/bench", help="folder for pipeline.json")
    a = sub.add_parser("adapter", help="per-chunk adapter processing time for each embodiment")
    a.add_argument("--iterations", type=int, default=500, help="chunks per embodiment (default 500)")
    a.add_argument("--out", default="out/bench", help="folder for adapter.json")
    mo = sub.add_parser("model", help="streaming vs recompute, frame attention scaling, nano latency, 4B size")
    mo.add_argument("--repeat", type=int, default=5, help="timed repetitions per figure (default 5)")
    mo.add_argument("--lengths", type=int, nargs="+", default=[8, 64, 256], help="history lengths (frames)")
    mo.add_argument("--out", default="out/bench", help="folder for model.json")
    se = sub.add_parser("serve", help="remote inference (kairos-serve on loopback) against the same model in-process")
    se.add_argument("--seconds", type=float, default=5.0, help="seconds per run (default 5)")
    se.add_argument("--robots", type=int, nargs="+", default=[1, 4, 16], help="simulated robots (default 1 4 16)")
    se.add_argument("--config", default="config/aloha.yaml", help="profile served (default config/aloha.yaml)")
    se.add_argument("--backend", default="hold", help="backend served (default hold)")
    se.add_argument("--encoding", default="raw", choices=["raw", "jpeg"], help="frame encoding (default raw)")
    se.add_argument("--out", default="out/bench", help="folder for serve.json")
    se.add_argument("--ray", action="store_true", help="instead: kairos-serve --ray's batching gain, batched vs "
                    "unbatched throughput of the largest --robots count on the profile's kairos model (serve-ray.json)")
    li = sub.add_parser("live", help="the shipped profile on held-out recordings: stages, the real node, the bare "
                        "sampler (issue 13 targets)")
    li.add_argument("--profile", default="config/aloha.yaml", help="bringup profile (default config/aloha.yaml)")
    li.add_argument("--bags", nargs="+", default=None, help="bag folders or folders of them (default: "
                    "data/demo_transfer_cube and /work/demos/transfer_cube_heldout when present)")
    li.add_argument("--rate", type=float, default=10.0, help="observations per second into the node (default 10)")
    li.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="world_model parameter override (value parsed as JSON when it can be), e.g. flow_steps=5")
    li.add_argument("--no-node", action="store_true", help="the in-process part only")
    li.add_argument("--max-observations", type=int, default=None, help="first N observations of each episode")
    li.add_argument("--out", default="out/bench", help="folder for live.json")
    args = ap.parse_args(argv)
    # Each benchmark's module is imported only when it runs: model pulls in torch, pipeline rclpy.
    if args.what == "pipeline":
        from kairos_ros.tools.bench_pipeline import run_pipeline_bench
        result = run_pipeline_bench(args.seconds, args.rate, args.iterations)
    elif args.what == "model":
        from kairos_ros.tools.bench_model import run_model_bench
        result = run_model_bench(args.repeat, tuple(args.lengths))
    elif args.what == "adapter":
        from kairos_ros.tools.bench_adapter import run_adapter_bench
        result = run_adapter_bench(args.iterations)
    elif args.what == "serve" and args.ray:
        from kairos_ros.tools.bench_ray import run_ray_bench
        result, args.what = run_ray_bench(args.seconds, max(args.robots), args.config), "serve-ray"
    elif args.what == "serve":
        from kairos_ros.tools.bench_serve import run_serve_bench
        result = run_serve_bench(args.seconds, tuple(args.robots), args.config, args.backend, args.encoding)
    elif args.what == "live":
        from kairos_ros.tools.bench_live import DEFAULT_BAGS, parse_overrides, run_live_bench
        bags = args.bags or [b for b in DEFAULT_BAGS if os.path.exists(b)]
        result = run_live_bench(args.profile, bags, args.rate, parse_overrides(args.set), node=not args.no_node,
                                max_observations=args.max_observations)
    else:  # pragma: no cover - argparse refuses unknown choices
        return 2
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{args.what}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path}")
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
