"""`kairos-serve --ray`: the same model as a Ray Serve application behind the authenticated gateway.

The websocket gateway (remote/server.py) stays the only entry: its sessions keep each robot's
observation history (the world state, remote/session.py) and their backend is a `RayBackend`,
which sends the newest observations with every request to one Ray Serve deployment,
`KairosReplica`. The replica is stateless per call (serve/batched.py: official temporal mode,
whose world state is the newest observations), so `@serve.batch` can group requests of different
robots into one forward pass without mixing their states, and Ray Serve's autoscaler may add or
remove replicas (`--ray-min-replicas`/`--ray-max-replicas`/`--ray-target-ongoing`) without
moving any state.

What stays private (docs/remote-protocol.md, "Scale-out with Ray Serve"): Ray runs as a local
single-node cluster whose node address is the loopback address (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
so GCS, raylet, object manager, workers and agents bind 127.0.0.1), with Ray's token authentication
on (RAY_AUTH_MODE=token), the dashboard off, usage stats off, and no Serve HTTP or gRPC proxy at all
(proxy_location Disabled; the gateway talks to the deployment through a handle). Ray 2.60's one
exception is each Serve replica's inter-deployment gRPC server, which it binds to all interfaces
([::], random port) behind Ray's token authentication: firewall it.
"""
from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from kairos_ros.backends.base import Backend, _check_history
from kairos_ros.core.types import PredictionData

RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # single-machine node: its address is loopback, servers bind 127.0.0.1
    "RAY_AUTH_MODE": "token",  # Ray's own token authentication between its processes (the 2.60 default, made sure)
    "RAY_USAGE_STATS_ENABLED": "0",
}
APP = "kairos"


@dataclass(frozen=True)
class RayOptions:
    """The deployment's batching and autoscaling bounds (kairos-serve --ray-* options)."""

    max_batch_size: int = 16
    batch_wait_ms: float = 10.0
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = 16.0
    replica_cpus: float = 1.0
    timeout: float = 60.0  # seconds a session waits for its chunk

    def __post_init__(self):
        checks = [("max_batch_size", 1 <= self.max_batch_size <= 256), ("batch_wait_ms", 0 <= self.batch_wait_ms <= 10000),
                  ("min_replicas", 1 <= self.min_replicas <= 1024),
                  ("max_replicas", self.min_replicas <= self.max_replicas <= 1024),
                  ("target_ongoing_requests", 0 < self.target_ongoing_requests <= 4096),
                  ("replica_cpus", 0 < self.replica_cpus <= 1024), ("timeout", 0 < self.timeout <= 3600)]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"Ray option {name} = {getattr(self, name)!r} is out of range "
                                 "(max_replicas >= min_replicas >= 1)")


def start_ray(num_cpus: int | None = None):
    """A private local Ray with Serve started and no HTTP/gRPC proxy; returns the ray module."""
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        raise RuntimeError("ray was imported before start_ray(): its node would bind every interface")
    os.environ.update(RAY_ENV)
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, namespace="kairos", log_to_driver=False,
                 configure_logging=False)
    serve.start(proxy_location="Disabled")  # no HTTP or gRPC proxy: the gateway holds a handle
    return ray


class KairosReplica:
    """One Ray Serve replica: the batched, stateless model (serve/batched.py)."""

    def __init__(self, embodiment: str, params: dict, max_batch_size: int, batch_wait_s: float):
        from ray import serve

        from kairos_ros.core.embodiment import load_embodiment
        from kairos_ros.serve.batched import BatchedKairos

        self.model = BatchedKairos(load_embodiment(embodiment), **params)
        self.batches: deque = deque(maxlen=10000)  # sizes of the batches run, newest last
        self._batched = serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_s)(self._run)

    async def _run(self, items: list) -> list:
        self.batches.append(len(items))
        results = await asyncio.to_thread(self.model.predict_many, items)  # the loop keeps queueing the next batch
        return [{"error": str(r)} if isinstance(r, Exception) else r for r in results]

    async def __call__(self, item):
        return await self._batched(item)

    def info(self) -> dict:
        m, b = self.model, self.model.backend
        return {"model": m.model, "frames_needed": m.frames_needed, "history_frames": m.history_frames,
                "action_dim": m.action_dim, "noise_scale": m.noise_scale, "required_horizon": b.required_horizon,
                "image": list(b.image_size) if b.image_size else None, "state_velocity": b.state_velocity}

    def batch_sizes(self) -> list:
        return list(self.batches)


def deployment_options(options: RayOptions) -> dict:
    """serve.deployment's keyword arguments: autoscaling between the bounds (a fixed count when they
    are equal), room for two batches of requests per replica (fewer would cap the batch), CPUs."""
    scaling = ({"autoscaling_config": {"min_replicas": options.min_replicas, "max_replicas": options.max_replicas,
                                       "target_ongoing_requests": options.target_ongoing_requests}}
               if options.max_replicas > options.min_replicas else {"num_replicas": options.min_replicas})
    return {"max_ongoing_requests": max(8, 2 * options.max_batch_size),
            "ray_actor_options": {"num_cpus": options.replica_cpus}, **scaling}


def deploy(embodiment: str, params: dict, options: RayOptions, name: str = APP):
    """Run the deployment (serve.run) and return (handle, info); the replica refuses bad settings."""
    from ray import serve

    deployment = serve.deployment(KairosReplica, name=name, **deployment_options(options))
    app = deployment.bind(embodiment, dict(params), options.max_batch_size, options.batch_wait_ms / 1000.0)
    handle = serve.run(app, name=name, route_prefix=None)
    info = handle.info.remote().result(timeout_s=options.timeout)
    return handle, info


class RayBackend(Backend):
    """A session's backend in the gateway: its history goes to the deployment with each request."""

    name = "kairos"

    def __init__(self, spec, handle, info: dict, seed: int = 0, timeout: float = 60.0):
        super().__init__(spec, 0)
        self.handle, self.info, self.timeout = handle, info, timeout
        self.model = f"{info['model']} via Ray Serve"
        self.rng = np.random.default_rng(seed)  # this robot's own sampling noise, whatever it is batched with

    def check_observation(self, obs) -> None:
        if obs.composed is None:
            raise ValueError("observation without a composed image")
        image = self.info.get("image")
        if image and tuple(obs.composed.shape) != (image[1], image[0], 3):
            raise ValueError(f"composed image {obs.composed.shape[1]}x{obs.composed.shape[0]} (width x height) "
                             f"differs from image_width x image_height {image[0]}x{image[1]}")

    def request(self, history, horizon: int, step_period: float):
        from kairos_ros.serve.batched import BatchItem

        noise = None
        if self.info["noise_scale"] > 0:
            noise = (self.rng.standard_normal((horizon, self.info["action_dim"])) * self.info["noise_scale"])
            noise = noise.astype(np.float32)
        # What the model reads of each observation: the composed frame, the joint state, stamp and
        # instruction (the per-camera frames would double what crosses to the replica).
        slim = [replace(o, camera_names=[], images=[], image_stamps=[]) for o in list(history)[-self.info["frames_needed"]:]]
        return BatchItem(slim, horizon, step_period, noise)

    def predict(self, history, horizon: int, step_period: float) -> PredictionData:
        _check_history(history)
        last = history[-1]
        self.check_observation(last)
        try:
            result = self.handle.remote(self.request(history, horizon, step_period)).result(timeout_s=self.timeout)
        except TimeoutError:
            raise RuntimeError(f"no chunk from the Ray deployment within {self.timeout} s") from None
        except Exception as exc:  # Ray's own errors (replica died, deployment gone): the session resets
            raise RuntimeError(f"Ray deployment: {type(exc).__name__}: {str(exc)[:300]}") from None
        if isinstance(result, dict):
            raise ValueError(result.get("error", "the Ray deployment refused the request"))
        self.world_state_frames = min(len(history), self.info["history_frames"])
        return PredictionData(last.stamp, [], [], result)


# -- kairos-serve --ray ----------------------------------------------------------------------------------

def add_ray_options(ap) -> None:
    """kairos-serve's --ray options (serve/cli.py calls this)."""
    g = ap.add_argument_group("Ray Serve", "serve the model as a Ray Serve deployment behind this gateway")
    g.add_argument("--ray", action="store_true", help="deploy the model on a private local Ray (batching across "
                   "robots, autoscaled replicas); backend kairos in official temporal mode only")
    g.add_argument("--ray-max-batch-size", type=int, default=16, help="robots per batch (default 16)")
    g.add_argument("--ray-batch-wait-ms", type=float, default=10.0, help="longest wait to fill a batch (default 10)")
    g.add_argument("--ray-min-replicas", type=int, default=1, help="autoscaling lower bound (default 1)")
    g.add_argument("--ray-max-replicas", type=int, default=1, help="autoscaling upper bound (default 1: fixed)")
    g.add_argument("--ray-target-ongoing", type=float, default=16.0,
                   help="requests per replica the autoscaler aims at (default 16)")
    g.add_argument("--ray-replica-cpus", type=float, default=1.0, help="CPUs reserved per replica (default 1)")
    g.add_argument("--ray-num-cpus", type=int, default=0, help="CPUs the local Ray may use (default 0: all)")
    g.add_argument("--ray-timeout", type=float, default=60.0, help="seconds a robot waits for its chunk (default 60)")


def ray_options(args) -> RayOptions:
    return RayOptions(args.ray_max_batch_size, args.ray_batch_wait_ms, args.ray_min_replicas, args.ray_max_replicas,
                      args.ray_target_ongoing, args.ray_replica_cpus, args.ray_timeout)


def ray_served(args):
    """The profile's world_model section, validated with the node's schema and cross-checks, deployed
    on Ray; the ServedModel whose sessions forward to the deployment (no model in the gateway)."""
    import itertools
    from types import SimpleNamespace

    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.params.world_model import backend_options, check_world_model
    from kairos_ros.serve import StartError
    from kairos_ros.remote.session import ServedModel
    from kairos_ros.serve.profile import world_model_params

    options = ray_options(args)
    # Every session may wait on the deployment at once (that is what fills a batch): one gateway
    # thread per session, each only waiting on a Ray handle.
    args.workers = max(args.workers, args.max_sessions)
    # --ray serves the model: kairos unless said
    params = world_model_params(args.config, args.backend, args.embodiment, default_backend="kairos")
    if params["backend"] != "kairos" or params["temporal_mode"] != "official":
        raise StartError(f"--ray serves backend 'kairos' in temporal_mode 'official' (the profile: backend "
                         f"'{params['backend']}', temporal_mode '{params['temporal_mode']}'): only there does a "
                         "robot's world state travel with its requests")
    spec = load_embodiment(params["embodiment"])
    kairos = {k: v for k, v in backend_options(params).items() if k != "num_predicted_frames"}
    start_ray(args.ray_num_cpus or None)
    try:
        handle, info = deploy(spec.name, kairos, options)
    except Exception as exc:  # the replica's constructor refused (weights, sizes): its message, not Ray's traceback
        raise StartError(f"the Ray deployment did not start: {str(exc).strip().splitlines()[-1][:400]}") from None
    check_world_model(params, SimpleNamespace(required_horizon=info["required_horizon"],
                                              state_velocity=info["state_velocity"]))
    seeds = itertools.count(params["seed"])

    def make():
        return RayBackend(spec, handle, info, seed=next(seeds), timeout=options.timeout)

    return ServedModel(make, spec.name, tuple(spec.slot_names), info["required_horizon"] or params["horizon"],
                       params["step_period"] or spec.default_step_period, params["history_length"],
                       backend="kairos", model=f"{info['model']} via Ray Serve", temporal_mode="official",
                       num_predicted_frames=0, image_width=params["image_width"], image_height=params["image_height"])
