"""kairos-serve --ray's deployment (serve/ray_serve.py, serve/batched.py) on a local CPU Ray.

Marked `ray` (deselect with -m "not ray"); one Ray start for the module. Checks that a robot's
chunk does not depend on what it is batched with (two robots batched together get the chunks each
gets alone, and the in-process kairos backend's), that the gateway's RayBackend hands each
session's own history over, and that Ray's ports stay on the loopback interface.
"""
import os
import subprocess
import threading

import numpy as np
import pytest
import yaml

from kairos_ros.backends.kairos_options import KAIROS_KEYS
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.lib.synthetic import JointMotion, Scene

pytestmark = pytest.mark.ray
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = load_embodiment("aloha")
WM = yaml.safe_load(open(os.path.join(REPO, "config", "aloha.yaml")))["world_model"]["ros__parameters"]
PARAMS = {k: v for k, v in WM.items() if k in KAIROS_KEYS}  # the bundled kairos-nano, official mode
HORIZON, PERIOD = 32, 0.05


def robot_history(seed: int, n: int = 5, instruction: str = WM["instruction"]) -> list:
    """A simulated robot's newest observations (lib/synthetic.py: smooth joint motion, a scene that moves with it)."""
    motion = JointMotion(list(SPEC.joint_names), SPEC.lower, SPEC.upper, seed)
    scene = Scene("head", 0, PARAMS["image_width"], PARAMS["image_height"], list(SPEC.joint_names), seed)
    out = []
    for k in range(n):
        t = 1.0 + 0.1 * k
        q, dq = motion.state(t)
        frame = scene.render(motion.normalised(t)[0])
        out.append(ObservationData(t, ["head"], [frame], JointStateData(t, list(SPEC.joint_names), q[0], dq[0]),
                                   instruction=instruction, composed=frame))
    return out


def descendants(pid: int) -> set:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture(scope="module")
def ray_app():
    """kairos-serve --ray's ServedModel, built from its command line (one Ray for the module)."""
    from kairos_ros.serve.ray_serve import ray_served
    from kairos_ros.serve.cli import parse_args

    args = parse_args(["--config", os.path.join(REPO, "config", "aloha.yaml"), "--backend", "kairos", "--ray", "--ray-num-cpus", "2",
                       "--ray-max-batch-size", "2", "--ray-batch-wait-ms", "3000", "--ray-timeout", "120"])
    try:
        served = ray_served(args)
        probe = served.make_backend()
        yield probe.handle, probe.info, served, args
    finally:
        import ray
        from ray import serve

        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()


@pytest.fixture(scope="module")
def local():
    """The replica's class in this process: what a robot's request gives alone, batched with nothing."""
    from kairos_ros.serve.batched import BatchedKairos

    return BatchedKairos(SPEC, **PARAMS)


def alone(local, history):
    (chunk,) = local.predict_many([item(history[-local.frames_needed:])])
    return chunk


def item(history):
    from kairos_ros.serve.batched import BatchItem

    return BatchItem(history, HORIZON, PERIOD)


def test_batched_robots_get_the_chunks_each_gets_alone(ray_app, local):
    handle, info, _, _ = ray_app
    a, b = robot_history(1), robot_history(2)
    before = len(handle.batch_sizes.remote().result())
    together = [handle.remote(item(a)), handle.remote(item(b))]  # both queued before either runs
    together = [r.result(timeout_s=120) for r in together]
    sizes = handle.batch_sizes.remote().result()[before:]
    assert sizes == [2], sizes
    for t, s in zip(together, [alone(local, h) for h in (a, b)]):
        assert t.values.shape == (HORIZON, len(SPEC.slot_names)) and np.all(np.isfinite(t.values))
        np.testing.assert_allclose(t.values, s.values, atol=1e-5)
    assert np.abs(together[0].values - together[1].values).max() > 1e-3  # two robots, two different chunks

    # The same chunk as the in-process kairos backend (the world-model node's) for that history alone.
    from kairos_ros.backends.kairos_backend import KairosBackend

    local = KairosBackend(SPEC, num_predicted_frames=0, **PARAMS)
    np.testing.assert_allclose(local.predict(a, HORIZON, PERIOD).chunk.values, together[0].values, atol=1e-5)
    assert info["frames_needed"] == max(PARAMS["history_frames"], local.state_velocity)


def test_gateway_sessions_hand_their_own_history_over(ray_app, local):
    from kairos_ros.serve.ray_serve import RayBackend

    handle, info, _, _ = ray_app
    histories = [robot_history(3), robot_history(4)]
    sessions = [RayBackend(SPEC, handle, info, seed=k, timeout=120) for k in range(2)]
    results: dict = {}

    def run(k):
        results[k] = sessions[k].predict(histories[k], HORIZON, PERIOD).chunk

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [0, 1]
    for k in range(2):
        np.testing.assert_allclose(results[k].values, alone(local, histories[k]).values, atol=1e-5)
        assert results[k].stamp == histories[k][-1].stamp and results[k].slot_names == list(SPEC.slot_names)
    with pytest.raises(ValueError, match="differs from image_width x image_height"):
        bad = robot_history(5)
        bad[-1].composed = bad[-1].composed[:64]
        sessions[0].predict(bad, HORIZON, PERIOD)
    with pytest.raises(ValueError, match="stepwise action statistics"):  # refused in the replica, said to the session
        sessions[0].predict(histories[0], HORIZON // 2, PERIOD)


def test_ray_ports_stay_private(ray_app):
    """Every socket Ray's processes listen on is on loopback, except Serve's replica gRPC server
    (Ray 2.60 binds it to [::]; behind Ray's token authentication, which is on); no HTTP proxy."""
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    assert is_token_auth_enabled()
    ours = descendants(os.getpid())
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    listening = []
    for line in out.splitlines():
        fields = line.split()
        pids = {int(p.split("=")[1]) for p in fields[-1].split(",") if p.startswith("pid=")}
        if pids & ours:
            listening.append((fields[3], fields[-1]))
    assert listening, "no Ray listener found (ss shows no process ids?)"
    public = [(addr, who) for addr, who in listening
              if not (addr.startswith("127.0.0.1:") or addr.startswith("[::ffff:127.0.0.1]:") or addr.startswith("[::1]:"))]
    assert all("ServeRepli" in who for _, who in public), public
    assert not any(addr.endswith(":8000") for addr, _ in listening)  # Serve's HTTP proxy is not started


def test_through_the_authenticated_gateway(ray_app, local, tmp_path):
    """A robot's remote backend -> kairos-serve's websocket gateway (token checked) -> the deployment."""
    import asyncio

    from kairos_ros.backends import make_backend
    from kairos_ros.remote.server import RemoteServer, ServerSettings
    from kairos_ros.remote.session import SessionManager

    handle, info, served, args = ray_app
    assert args.workers >= args.max_sessions  # every session may wait on the deployment at once
    assert served.backend == "kairos" and "via Ray Serve" in served.model and served.num_predicted_frames == 0
    token = "ray-gateway-token-0123456789"
    (tmp_path / "token").write_text(token)
    server = RemoteServer(ServerSettings(port=0, token=token, workers=args.workers), SessionManager(served, 4, 60.0))
    ready, box = threading.Event(), {}

    def serve_forever():
        async def main():
            box["stop"], box["loop"] = asyncio.Event(), asyncio.get_running_loop()
            await server.run(box["stop"], lambda port: ready.set())
        asyncio.run(main())

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    assert ready.wait(30), "the gateway did not start"
    robot = make_backend("remote", SPEC, horizon=served.horizon, step_period=PERIOD,
                         remote_url=f"ws://127.0.0.1:{server.port}", remote_token_file=str(tmp_path / "token"),
                         remote_reply_timeout=120.0, remote_connect_timeout=10.0)
    try:
        history = robot_history(6)
        chunk = robot.predict(history, served.horizon, PERIOD).chunk
        np.testing.assert_allclose(chunk.values, alone(local, history).values, atol=1e-5)
    finally:
        robot.close()
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=30)


def test_bench_robots_drive_the_deployment(ray_app):
    """kairos-bench serve --ray's simulated robots and driver, briefly, on the module's deployment."""
    from kairos_ros.serve.ray_serve import RayBackend
    from kairos_ros.tools.bench_ray import SimRobot, _drive

    handle, info, served, _ = ray_app
    sims = [SimRobot(SPEC, 100 + k, PARAMS["image_width"], PARAMS["image_height"], WM["instruction"],
                     info["frames_needed"]) for k in range(2)]
    backends = [RayBackend(SPEC, handle, info, seed=k, timeout=120) for k in range(2)]
    row = _drive(backends, sims, served.horizon, PERIOD, 0.5)
    assert row["chunks"] >= 2 and row["throughput_hz"] > 0
    assert all(1 <= len(s.history) <= info["frames_needed"] for s in sims)  # each robot sends only its newest
