"""World-model node: Observation history -> PredictedFuture + ActionChunk through a backend.

Inference runs on its own thread, so observation intake never waits for the model; when the
model is slower than the camera, it always works on the newest observation (older ones still
enter the history). What that thread does next is core.scheduler's decision: a requested reset
first, then control, then Imagine goals. Only that thread touches the backend, so no service or
subscription callback ever waits for inference. A chunk or frames that fail core/prediction.py's
checks are not published. With chunk_first, predicted frames are off the control path: the chunk
is published as soon as it exists, and the frames are made by a frame worker thread of their own
(core/frame_jobs.py: lower priority, paused while control runs; a waiting frame job that a newer
one replaces is stale: dropped, counted). Each chunk's time is accounted in stages
(core/stages.py); a chunk over latency_budget is reported with the stage that took longest.
The Imagine action (nodes/world_model_imagine.py) awaits its job's future, so the node spins a
single-threaded executor: rclpy's multi-threaded executor added 60-400 ms of scheduling delay here.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture, WorldModelStatus
from kairos_msgs.srv import ResetWorldState, SetInstruction
from kairos_ros.backends import make_backend
from kairos_ros.core.diagnostics import LatencyStats, ProblemCounter, RateMeter
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.frame_jobs import FrameJobs
from kairos_ros.core.observation import ObservationHistory
from kairos_ros.core.params import ParameterError
from kairos_ros.core.prediction import BadPrediction, check_frames, check_prediction_chunk
from kairos_ros.core.realtime import lower_thread_priority
from kairos_ros.core.scheduler import CONTROL, IMAGINE, RESET, STOPPED, InferenceScheduler
from kairos_ros.core.stages import Arrivals, StageTimes, health
from kairos_ros.core.stamps import stamp_problem
from kairos_ros.core.text import InstructionError, check_instruction, instruction_set_message
from kairos_ros.core.types import PredictionData
from kairos_ros.lib.rostime import to_sec
from kairos_ros.nodes.common import declare_schema, diagnostic_array, now_sec, run_node, warn_problem
from kairos_ros.nodes.convert import chunk_to_msg, future_to_msg, observation_from_msg
from kairos_ros.nodes.world_model_imagine import IMAGINE_NICE, ImagineMixin
from kairos_ros.params.world_model import SCHEMA, backend_options, check_world_model

REQUEST_DEPTH = 200  # service and action requests kept unread at most


def start_thread(target, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class WorldModelNode(ImagineMixin, Node):
    def __init__(self):
        super().__init__("world_model")
        p = declare_schema(self, SCHEMA)
        check_world_model(p)
        try:
            self.spec = load_embodiment(p["embodiment"])
            self.backend = make_backend(p["backend"], self.spec, **backend_options(p))
            self.imagine_backend = self._make_imagine_backend(p)  # None: Imagine on the inference thread
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ParameterError(str(exc)) from exc
        check_world_model(p, self.backend)
        self.params = p
        self.step_period = p["step_period"] or self.spec.default_step_period
        self.history = ObservationHistory(p["history_length"])
        self.problems = ProblemCounter("world_model")
        self.rate = RateMeter()
        self.latency = LatencyStats()
        self.stage_times = StageTimes()
        self.arrivals = Arrivals()  # the newest observation taken in: stamp, received, queued
        self.dropped = 0
        # Only the inference thread touches the backend; the scheduler's lock also guards the history.
        self.scheduler = InferenceScheduler(lambda: time.monotonic(), p["imagine_queue"], p["imagine_timeout"])
        self.cond = self.scheduler.cond
        # The frame worker's jobs; control_idle (clear while a control prediction runs: frames pause)
        # exists before the inference thread starts.
        self.frames = FrameJobs(self.scheduler, p["max_observation_age"], p["future_stamp_tolerance"])
        self.instruction = p["instruction"]
        latched = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.instruction_pub = self.create_publisher(String, p["instruction_topic"], latched)
        self.instruction_pub.publish(String(data=self.instruction))
        self.chunk_pub = self.create_publisher(ActionChunk, p["chunk_topic"], 10)
        self.future_pub = self.create_publisher(PredictedFuture, p["future_topic"], 10)
        self.status_pub = self.create_publisher(WorldModelStatus, p["status_topic"], 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Observation, p["observation_topic"], self._on_observation, 10)
        requests = QoSProfile(depth=REQUEST_DEPTH, reliability=QoSReliabilityPolicy.RELIABLE)
        self.create_service(SetInstruction, "~/set_instruction", self._set_instruction, qos_profile=requests)
        self.create_service(ResetWorldState, "~/reset_world_state", self._reset, qos_profile=requests)
        self._start_imagine_server(requests)  # the same deep request queue (world_model_imagine.py)
        self.create_timer(p["status_period"], self._status)
        self.create_timer(0.25, self.scheduler.expire)  # queued goals end even while control keeps the thread busy
        self.startup_warning = getattr(self.backend, "startup_warning", "")
        if self.startup_warning:
            self.get_logger().error(self.startup_warning)
            self.problems.problem("random_weights", self.startup_warning)
        self.worker = start_thread(self._work, "inference")
        self.frame_worker = start_thread(self._frame_work, "frames") if p["chunk_first"] else None  # after chunks
        self.imagine_worker = start_thread(self._imagine_work, "imagine") if self.imagine_backend is not None else None
        self.get_logger().info(f"world model: backend '{self.backend.name}' ({self.backend.model}), "
                               f"embodiment '{self.spec.name}', horizon {p['horizon']} x "
                               f"{len(self.spec.slot_names)} slots every {self.step_period:.3f} s")

    # -- intake -------------------------------------------------------------------------------
    def _warn(self, key: str, message: str) -> None:
        warn_problem(self, self.problems, key, message)

    def _on_observation(self, msg: Observation) -> None:
        received = time.perf_counter()
        if not np.all(np.isfinite(np.asarray(msg.joint_state.position, dtype=np.float64))):
            # NaN/inf input: nothing is predicted from it and the world state starts afresh.
            self._drop("non_finite_input", "observation with non-finite joint positions dropped; world state reset")
            return
        problem = stamp_problem(to_sec(msg.header.stamp), now_sec(self), 0.0, self.params["future_stamp_tolerance"],
                                "observation")
        if problem:
            self._warn("future_stamp", f"observation dropped: {problem}")
            return
        try:
            obs = observation_from_msg(msg)
            missing = [j for j in self.spec.joint_names if j not in obs.joint_state.names]
            if missing:
                raise ValueError(f"observation joint_state lacks joints {missing}")
        except ValueError as exc:
            self._warn("bad_observation", f"observation dropped: {exc}")
            return
        try:
            self.backend.check_observation(obs)
        except ValueError as exc:
            self._warn("bad_image_size", f"observation refused by backend '{self.backend.name}': {exc}")
            return
        with self.cond:
            if self.history.add(obs):
                self._warn("time_jump", "observation stamps jumped backwards: world state reset")
                self.scheduler.request_reset()
            self.arrivals.record(obs.stamp, received, time.perf_counter())
        self.scheduler.observe()

    # -- inference ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            task = self.scheduler.next(imagine=self.imagine_backend is None)
            if task is None:
                return
            kind, job = task
            if kind == RESET:
                self.backend.reset()
            elif kind == CONTROL:
                with self.cond:
                    history = self.history.snapshot()
                if history:
                    with self.frames.control():
                        self._predict(history)
            elif kind == IMAGINE:
                self._run_imagine(self.backend, job)

    def _predict(self, history) -> None:
        problem = stamp_problem(history[-1].stamp, now_sec(self), self.params["max_observation_age"],
                                self.params["future_stamp_tolerance"], "newest observation", "max_observation_age")
        if problem:
            self._warn("stale_observation", f"{problem}: not predicting from it")
            return
        start = time.perf_counter()
        with self.cond:
            arrived, queued = self.arrivals.of(history[-1].stamp, start)
        sent = []

        def on_chunk(chunk) -> None:
            check_prediction_chunk(chunk, self.spec, self.params["horizon"])
            ready = time.perf_counter()
            self.latency.add(ready - start)  # the backend's time to the chunk
            self.rate.tick()
            if self.params["chunk_first"]:  # out at once: the robot does not wait for predicted frames
                self.chunk_pub.publish(chunk_to_msg(chunk, self.params["frame_id"]))
            sent.append((chunk, ready, time.perf_counter()))

        def account() -> None:  # observation arrival -> chunk published, in stages
            _, ready, done = sent[0]
            late = self.stage_times.add_chunk(arrived, queued, start, ready, done,
                                              getattr(self.backend, "stages", None), self.params["latency_budget"])
            if late:
                self._warn("slow_inference", late)

        try:
            if self.params["chunk_first"]:
                job = self.backend.predict_deferred(history, self.params["horizon"], self.step_period, on_chunk)
                account()
                if job.pending:  # the frame worker makes them; a newer job replaces this one if it waits
                    self.frames.submit(job, sent[0][1] - start)
                    return
                frames, times = job.run()
                pred = PredictionData(job.stamp, frames, times, job.chunk)
            else:
                pred = self.backend.predict(history, self.params["horizon"], self.step_period)
                on_chunk(pred.chunk)
            check_frames(pred.frames)
        except (ValueError, RuntimeError) as exc:  # BadPrediction included
            note = " (its chunk was already sent: chunk_first)" if sent and self.params["chunk_first"] else ""
            if isinstance(exc, BadPrediction):
                self._drop("bad_prediction", f"prediction dropped: {exc}; world state reset{note}")
            else:
                self._drop("backend_error", f"backend '{self.backend.name}' failed: {exc}{note}")
            return
        pred.latency = time.perf_counter() - start
        if not self.params["chunk_first"]:
            self.chunk_pub.publish(chunk_to_msg(pred.chunk, self.params["frame_id"]))
            account()
        self.future_pub.publish(future_to_msg(pred, self.params["frame_id"], self.params["publish_frames"]))

    def _frame_work(self) -> None:
        """The frame worker: runs each prediction's frame job (its chunk is out already) on snapshots
        the backend took, at a lower CPU priority than control (nice 10), and publishes its
        PredictedFuture. Stale jobs are dropped and counted (core/frame_jobs.py)."""
        lower_thread_priority(IMAGINE_NICE)
        while True:
            out = self.frames.run_next(lambda: now_sec(self))
            if out is STOPPED:
                return
            if isinstance(out, Exception):
                self._drop("bad_prediction" if isinstance(out, BadPrediction) else "backend_error",
                           f"predicted frames dropped: {out}; world state reset (the chunk was already sent)")
            elif out is not None:
                job, frames, times, latency = out
                pred = PredictionData(job.stamp, frames, times, job.chunk, latency=latency)
                self.future_pub.publish(future_to_msg(pred, self.params["frame_id"], self.params["publish_frames"]))

    def _drop(self, key: str, message: str) -> None:
        """Count, warn, clear the history and have the inference thread reset the world state."""
        self.dropped += 1
        self._warn(key, message)
        with self.cond:
            self.history.clear()
        self.scheduler.request_reset()

    # -- services (the Imagine action: world_model_imagine.py) ---------------------------------
    def _set_instruction(self, request, response):
        text = request.instruction
        try:
            check_instruction(text)
        except InstructionError as exc:
            response.success, response.message = False, f"instruction refused: {exc}"
            self._warn("bad_instruction", response.message)
            return response
        self.instruction = text
        self.instruction_pub.publish(String(data=text))
        response.success, response.message = True, instruction_set_message(text)
        self.get_logger().info(f"instruction: {text!r}")
        return response

    def _reset(self, _request, response):
        """Answer at once: the history is cleared now, the world state before the next prediction."""
        with self.cond:
            self.history.clear()
        self.scheduler.request_reset()
        response.success, response.message = True, "observation history cleared; world state reset before the next prediction"
        self.get_logger().info("world state reset on request", throttle_duration_sec=1.0)
        return response

    # -- status -------------------------------------------------------------------------------
    def _status(self) -> None:
        pct = self.latency.percentiles()
        msg = WorldModelStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.backend, msg.model = self.backend.name, self.backend.model
        msg.rate_hz = float(self.rate.rate())
        msg.latency_p50, msg.latency_p90, msg.latency_p99 = (float(pct.get(k) or 0.0) for k in ("p50", "p90", "p99"))
        msg.world_state_frames = int(getattr(self.backend, "world_state_frames", len(self.history)))
        msg.dropped = self.dropped
        level, message, _ = self.problems.status()
        msg.health, msg.message = health(level, message, self.startup_warning, self.stage_times.last_late)
        self.status_pub.publish(msg)
        self.diag_pub.publish(diagnostic_array(self, "inference", self.problems, {
            **{f"scheduler.{k}": v for k, v in self.scheduler.counts.items()}, "imagine_active": self.scheduler.active,
            "backend": self.backend.name, "rate_hz": f"{msg.rate_hz:.2f}", "dropped": self.dropped,
            "latency_p50": f"{msg.latency_p50:.4f}", "latency_p99": f"{msg.latency_p99:.4f}",
            **self.stage_times.values(), **self.frames.values(),
            **getattr(self.backend, "diagnostics", dict)()}))  # remote: link state, reconnects, round trip

    def close(self) -> None:
        self.scheduler.stop()
        self.worker.join(timeout=2.0)
        if self.frame_worker is not None:
            self.frames.cancel()  # a running job gives up at its next step
            self.frame_worker.join(timeout=10.0)
        if self.imagine_worker is not None:
            self.imagine_worker.join(timeout=2.0)


def main(args=None) -> int:
    return run_node(WorldModelNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
