"""Monitor node: watches the graph's outputs for the bringup's status line and live evaluation.

It records rates, the wall-clock latency from an Observation's arrival to the arrival of the
JointTrajectory made from it (sim time would quantise it to the /clock period), the world model's
inference latency, and (for live evaluation) the chunks and the robot's joint states.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64
from trajectory_msgs.msg import JointTrajectory

from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture, WorldModelStatus
from kairos_msgs.srv import ResetSim
from kairos_ros.core.diagnostics import LatencyStats, RateMeter
from kairos_ros.core.embodiment import EmbodimentSpec
from kairos_ros.core.image import resize_rgb
from kairos_ros.core.joints import JointStateError, order_joint_state
from kairos_ros.lib.rostime import to_sec
from kairos_ros.nodes.common import image_msg_to_rgb
from kairos_ros.nodes.convert import chunk_from_msg

MAX_RECORDS = 200_000
MAX_VIDEO_FRAMES = 1500  # 5 minutes at 5 frames per second
VIDEO_PERIOD = 0.2  # s of the node's clock between video frames


class MonitorNode(Node):
    def __init__(self, spec: EmbodimentSpec, trajectory_topic: str, use_sim_time: bool):
        super().__init__("kairos_monitor")
        self.set_parameters([rclpy_param("use_sim_time", use_sim_time)])
        self.spec = spec
        self.lock = threading.Lock()
        self.rates = {k: RateMeter() for k in ("observations", "predictions", "trajectories")}
        self.counts = {k: 0 for k in ("observations", "predictions", "trajectories", "joint_states")}
        self.e2e = LatencyStats(maxlen=1000)  # recent window, for the status line
        self.e2e_samples: list[float] = []  # every sample, for the report
        self.last_status: WorldModelStatus | None = None
        self.chunks = []  # ActionChunkData, for live evaluation
        self.adapter_counts: dict[str, int] = {}  # newest count.* values of the adapter's /diagnostics
        self.states_t: list[float] = []
        self.states_q: list[np.ndarray] = []
        self._unpaired_chunk_stamp: float | None = None
        self._obs_arrival: OrderedDict[float, float] = OrderedDict()  # observation stamp -> wall time
        depth = QoSProfile(depth=50)
        self.create_subscription(Observation, "/kairos/observation", self._on_obs, depth)
        self.create_subscription(ActionChunk, "/kairos/action_chunk", self._on_chunk, depth)
        self.create_subscription(JointTrajectory, trajectory_topic, self._on_traj, depth)
        # The adapter runs dry (preview topic) until armed: count either output.
        self.create_subscription(JointTrajectory, "/kairos/trajectory_preview", self._on_traj, depth)
        self.create_subscription(WorldModelStatus, "/kairos/status", self._on_status, depth)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, depth)
        self.create_subscription(JointState, "/joint_states", self._on_joints, QoSProfile(depth=200))

    # -- a simulated robot (kairos-bringup --sim) ---------------------------------------------------
    def watch_sim(self, camera_topic: str, video: bool = True) -> None:
        """Record the task's success, reward and done signals, and (video) the camera beside the
        newest predicted frame, every VIDEO_PERIOD of the node's clock."""
        self.sim = {"success": False, "success_at": None, "done": False, "reward": 0.0, "max_reward": 0.0}
        self.video: list[np.ndarray] = []
        self._camera = None
        self._predicted = None
        self.create_subscription(Bool, "/kairos/sim/success", self._on_success, 10)
        self.create_subscription(Bool, "/kairos/sim/done", self._on_done, 10)
        self.create_subscription(Float64, "/kairos/sim/reward", self._on_reward, 10)
        self.reset_client = self.create_client(ResetSim, "/sim/reset")
        if video:
            self.create_subscription(Image, camera_topic, self._on_camera, 5)
            self.create_subscription(PredictedFuture, "/kairos/predicted_future", self._on_future, 5)
            self.create_timer(VIDEO_PERIOD, self._video_frame)

    def _on_success(self, msg) -> None:
        with self.lock:
            if msg.data and not self.sim["success"]:
                self.sim["success"], self.sim["success_at"] = True, self.now()

    def _on_done(self, msg) -> None:
        with self.lock:
            self.sim["done"] = self.sim["done"] or bool(msg.data)

    def _on_reward(self, msg) -> None:
        with self.lock:
            self.sim["reward"] = float(msg.data)
            self.sim["max_reward"] = max(self.sim["max_reward"], float(msg.data))

    def _on_camera(self, msg) -> None:
        try:
            self._camera = image_msg_to_rgb(msg)
        except ValueError:
            pass

    def _on_future(self, msg) -> None:
        if msg.frames:
            try:
                self._predicted = image_msg_to_rgb(msg.frames[0])
            except ValueError:
                pass

    def _video_frame(self) -> None:
        if self._camera is None or len(self.video) >= MAX_VIDEO_FRAMES:
            return
        h, w = self._camera.shape[:2]
        pred = np.zeros_like(self._camera) if self._predicted is None else resize_rgb(self._predicted, w, h)
        self.video.append(np.concatenate([self._camera, pred], axis=1))

    def sim_snapshot(self) -> dict:
        with self.lock:
            return dict(getattr(self, "sim", {}))

    def subscribed_topics(self) -> set[str]:
        return {sub.topic_name for sub in self.subscriptions}

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_obs(self, msg) -> None:
        with self.lock:
            self._obs_arrival[to_sec(msg.header.stamp)] = time.monotonic()
            while len(self._obs_arrival) > 500:
                self._obs_arrival.popitem(last=False)
            self.counts["observations"] += 1
            self.rates["observations"].tick()

    def _on_chunk(self, msg: ActionChunk) -> None:
        try:
            chunk = chunk_from_msg(msg)
        except ValueError:
            return
        with self.lock:
            self.counts["predictions"] += 1
            self.rates["predictions"].tick()
            if len(self.chunks) < MAX_RECORDS:
                self.chunks.append(chunk)
            self._unpaired_chunk_stamp = chunk.stamp

    def _on_traj(self, _msg) -> None:
        now = time.monotonic()
        with self.lock:
            self.counts["trajectories"] += 1
            self.rates["trajectories"].tick()
            # The adapter publishes right after it receives a chunk, which reaches this node at
            # about the same time: pair the trajectory with the newest chunk not yet paired.
            arrived = self._obs_arrival.get(self._unpaired_chunk_stamp)
            if arrived is not None:
                latency = now - arrived
                if latency >= 0:
                    self.e2e.add(latency)
                    if len(self.e2e_samples) < MAX_RECORDS:
                        self.e2e_samples.append(latency)
                self._unpaired_chunk_stamp = None

    def _on_status(self, msg: WorldModelStatus) -> None:
        with self.lock:
            self.last_status = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        """The adapter's problem counts (count.<key> values), for the report: what it refused and why."""
        for status in msg.status:
            if status.name.split(":")[0].strip().lstrip("/").endswith("adapter"):
                counts = {kv.key[len("count."):]: kv.value for kv in status.values if kv.key.startswith("count.")}
                with self.lock:
                    self.adapter_counts = {k: int(v) for k, v in counts.items() if v.isdigit()}

    def _on_joints(self, msg: JointState) -> None:
        try:
            q, _ = order_joint_state(list(msg.name), msg.position, None, list(self.spec.joint_names),
                                     list(self.spec.ignore_joints))
        except JointStateError:
            return
        with self.lock:
            self.counts["joint_states"] += 1
            if len(self.states_t) < MAX_RECORDS:
                self.states_t.append(to_sec(msg.header.stamp))
                self.states_q.append(q)

    def status_line(self) -> str:
        with self.lock:
            r = {k: m.rate() for k, m in self.rates.items()}
            e2e = self.e2e.percentiles()
            st = self.last_status
        infer = f"infer p50 {st.latency_p50 * 1e3:.1f} ms" if st else "infer -"
        e2e_text = (f"obs->traj p50 {e2e['p50'] * 1e3:.0f} ms p99 {e2e['p99'] * 1e3:.0f} ms"
                    if e2e.get("count") else "obs->traj -")
        health = ("OK", "WARN", "ERROR")[st.health] if st and st.health < 3 else "-"
        return (f"obs {r['observations']:5.1f}/s | pred {r['predictions']:5.1f}/s | traj "
                f"{r['trajectories']:5.1f}/s | {infer} | {e2e_text} | model {health}")

    def snapshot(self) -> dict:
        """Everything recorded so far (copies), for the live evaluation report."""
        with self.lock:
            st = self.last_status
            return {
                "counts": dict(self.counts),
                "adapter": dict(self.adapter_counts),
                "e2e_latency": list(self.e2e_samples),
                "e2e": self.e2e.percentiles(),
                "chunks": list(self.chunks),
                "states_t": np.asarray(self.states_t, dtype=np.float64),
                "states_q": np.asarray(self.states_q, dtype=np.float64).reshape(len(self.states_q), len(self.spec.joint_names)),
                "status": None if st is None else {
                    "backend": st.backend, "model": st.model, "latency_p50": st.latency_p50,
                    "latency_p90": st.latency_p90, "latency_p99": st.latency_p99,
                    "dropped": int(st.dropped), "health": int(st.health), "message": st.message},
            }


def rclpy_param(name, value):
    return Parameter(name, Parameter.Type.BOOL, bool(value))
