"""World-model node: Observation history -> PredictedFuture + ActionChunk through a backend.

Inference runs on its own thread, so observation intake never waits for the model; when the
model is slower than the camera, it always works on the newest observation (older ones still
enter the history). What that thread does next is core.scheduler's decision: a requested reset
first, then control, then Imagine goals (a bounded queue; more goals are refused at once, queued
ones can be cancelled and expire after imagine_timeout). Only that thread touches the backend, so
no service or subscription callback ever waits for inference. With chunk_first, predicted frames
are off the control path: the chunk is published as soon as it exists, and the frames are made
by a frame worker thread of their own (lower priority, paused while control runs; a waiting frame
job that a newer one replaces is stale: dropped, counted). Each chunk's time is accounted in
stages (core/stages.py); a chunk over latency_budget is reported with the stage that took longest.
The Imagine action callback awaits its job's future, so the node spins a single-threaded
executor: rclpy's multi-threaded executor added 60-400 ms of scheduling delay here.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from kairos_msgs.action import Imagine
from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture, WorldModelStatus
from kairos_msgs.srv import ResetWorldState, SetInstruction
from kairos_ros.backends import make_backend
from kairos_ros.core.chunks import ChunkError, validate_chunk
from kairos_ros.core.diagnostics import LatencyStats, ProblemCounter, RateMeter
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.observation import ObservationHistory
from kairos_ros.core.params import ParameterError
from kairos_ros.core.scheduler import CONTROL, IMAGINE, RESET, STOPPED, Cancelled, InferenceScheduler
from kairos_ros.core.stages import StageTimes
from kairos_ros.core.stamps import stamp_problem
from kairos_ros.core.text import InstructionError, check_instruction
from kairos_ros.core.types import PredictionData
from kairos_ros.lib.rostime import to_sec
from kairos_ros.nodes.common import declare_schema, diagnostic_array, now_sec, run_node, warn_problem
from kairos_ros.nodes.convert import chunk_from_msg, chunk_to_msg, future_to_msg, observation_from_msg
from kairos_ros.params.world_model import SCHEMA, backend_options, check_world_model



REQUEST_DEPTH = 200  # service and action requests kept unread at most
IMAGINE_NICE = 10  # the Imagine thread's nice value (control runs at the process's own)


class BadPrediction(ValueError):
    """A prediction the node refuses to publish (wrong shape, non-finite values or frames)."""


class WorldModelNode(Node):
    def __init__(self):
        super().__init__("world_model")
        p = declare_schema(self, SCHEMA)
        check_world_model(p)
        try:
            self.spec = load_embodiment(p["embodiment"])
            self.backend = make_backend(p["backend"], self.spec, **backend_options(p))
            # Imagine on a model instance of its own, on a thread of its own: a long Imagine (predicted
            # frames: seconds on a CPU) then never holds up a control chunk.
            self.imagine_backend = (make_backend(p["backend"], self.spec, **backend_options(p))
                                    if p["imagine_worker"] == "separate" and p["imagine_queue"] > 0
                                    and p["backend"] != "remote" else None)  # remote: no Imagine, one session
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
        self.frame_latency = LatencyStats()
        self.last_arrival = (None, 0.0, 0.0)  # the newest observation taken in: stamp, received, queued
        self.dropped = 0
        # Only the inference thread touches the backend; the scheduler's lock also guards the history.
        self.scheduler = InferenceScheduler(lambda: time.monotonic(), p["imagine_queue"], p["imagine_timeout"])
        self.cond = self.scheduler.cond
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
        # Requests are read from a deeper queue than the default 10: a burst of goals or resets from
        # several clients must each get an answer (goals beyond imagine_queue refused at once), not be
        # overwritten unread.
        self.imagine_server = ActionServer(
            self, Imagine, "~/imagine", execute_callback=self._imagine,
            goal_callback=self._imagine_goal, cancel_callback=self._imagine_cancel,
            goal_service_qos_profile=requests, cancel_service_qos_profile=requests,
            result_service_qos_profile=requests)
        self.imagine_jobs: dict = {}  # goal id -> ImagineJob, while queued or running
        self.create_timer(p["status_period"], self._status)
        self.create_timer(0.25, self.scheduler.expire)  # queued goals end even while control keeps the thread busy
        self.startup_warning = getattr(self.backend, "startup_warning", "")
        if self.startup_warning:
            self.get_logger().error(self.startup_warning)
            self.problems.problem("random_weights", self.startup_warning)
        self.frame_worker, self.frame_job = None, None
        self.control_idle = threading.Event()  # clear while a control prediction runs: frames pause
        self.control_idle.set()
        self.worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self.worker.start()
        if p["chunk_first"]:  # predicted frames on a thread of their own, never before a chunk
            self.frame_worker = threading.Thread(target=self._frame_work, name="frames", daemon=True)
            self.frame_worker.start()
        self.imagine_worker = None
        if self.imagine_backend is not None:
            self.imagine_worker = threading.Thread(target=self._imagine_work, name="imagine", daemon=True)
            self.imagine_worker.start()
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
            self.last_arrival = (obs.stamp, received, time.perf_counter())
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
                    self.control_idle.clear()
                    try:
                        self._predict(history)
                    finally:
                        self.control_idle.set()
            elif kind == IMAGINE:
                self._run_imagine(self.backend, job)

    def _imagine_work(self) -> None:
        """The Imagine thread: its own model instance, at a lower CPU priority than control."""
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMAGINE_NICE)  # Linux: this thread only
        except (AttributeError, OSError):
            pass
        epoch = self.scheduler.reset_epoch
        while True:
            task = self.scheduler.next(control=False)
            if task is None:
                return
            kind, job = task
            if kind == IMAGINE:
                if epoch != self.scheduler.reset_epoch:  # the world state was reset meanwhile
                    epoch = self.scheduler.reset_epoch
                    self.imagine_backend.reset()
                self._run_imagine(self.imagine_backend, job)

    def _run_imagine(self, backend, job) -> None:
        history, candidate = job.payload
        start = time.perf_counter()
        try:
            pred = backend.imagine(history, candidate)
            pred.latency = time.perf_counter() - start
            job.finish(pred)
        except (ValueError, RuntimeError) as exc:
            job.finish(exc)

    def _predict(self, history) -> None:
        problem = stamp_problem(history[-1].stamp, now_sec(self), self.params["max_observation_age"],
                                self.params["future_stamp_tolerance"], "newest observation", "max_observation_age")
        if problem:
            self._warn("stale_observation", f"{problem}: not predicting from it")
            return
        start = time.perf_counter()
        with self.cond:
            stamp, arrived, queued = self.last_arrival
        if stamp != history[-1].stamp:
            arrived = queued = start
        sent = []

        def on_chunk(chunk) -> None:
            values = np.asarray(chunk.values)
            if values.shape != (self.params["horizon"], len(self.spec.slot_names)) or not np.all(np.isfinite(values)):
                raise BadPrediction(f"values of shape {values.shape}"
                                    f"{' with non-finite entries' if values.size and not np.all(np.isfinite(values)) else ''}")
            ready = time.perf_counter()
            self.latency.add(ready - start)  # the backend's time to the chunk
            self.rate.tick()
            if self.params["chunk_first"]:  # out at once: the robot does not wait for predicted frames
                self.chunk_pub.publish(chunk_to_msg(chunk, self.params["frame_id"]))
            sent.append((chunk, ready, time.perf_counter()))

        def account() -> None:  # observation arrival -> chunk published, in stages
            _, ready, done = sent[0]
            stages = {"intake": queued - arrived, "wait": start - queued,
                      **(getattr(self.backend, "stages", None) or {"backend": ready - start}), "message": done - ready}
            late = self.stage_times.add(stages, done - arrived, self.params["latency_budget"])
            if late:
                self._warn("slow_inference", late)

        try:
            if self.params["chunk_first"]:
                job = self.backend.predict_deferred(history, self.params["horizon"], self.step_period, on_chunk)
                account()
                if job.pending:  # the frame worker makes them; a newer job replaces this one if it waits
                    self.scheduler.submit_frames((job, self.scheduler.reset_epoch, sent[0][1] - start))
                    return
                frames, times = job.run()
                pred = PredictionData(job.stamp, frames, times, job.chunk)
            else:
                pred = self.backend.predict(history, self.params["horizon"], self.step_period)
                on_chunk(pred.chunk)
            if any(not np.all(np.isfinite(np.asarray(f, dtype=np.float32))) for f in pred.frames):
                raise BadPrediction("non-finite predicted frames")
        except BadPrediction as exc:
            self._drop("bad_prediction", f"prediction dropped: {exc}; world state reset"
                       + (" (its chunk was already sent: chunk_first)" if sent and self.params["chunk_first"] else ""))
            return
        except (ValueError, RuntimeError) as exc:
            self._drop("backend_error", f"backend '{self.backend.name}' failed: {exc}"
                       + (" (its chunk was already sent: chunk_first)" if sent and self.params["chunk_first"] else ""))
            return
        pred.latency = time.perf_counter() - start
        if not self.params["chunk_first"]:
            self.chunk_pub.publish(chunk_to_msg(pred.chunk, self.params["frame_id"]))
            account()
        self.future_pub.publish(future_to_msg(pred, self.params["frame_id"], self.params["publish_frames"]))

    def _frame_work(self) -> None:
        """The frame worker: runs each prediction's frame job (its chunk is out already) on snapshots
        the backend took, at a lower CPU priority than control (nice 10), and publishes its
        PredictedFuture. A job whose observation is older than max_observation_age when it would start, or whose
        world state was reset meanwhile, is stale: dropped and counted (scheduler.frames_stale)."""
        # Nice, not SCHED_IDLE: a thread starved while holding the GIL would stall control's thread too.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IMAGINE_NICE)  # Linux: this thread only
        except (AttributeError, OSError):
            pass
        while True:
            item = self.scheduler.next_frames()
            if item is STOPPED:
                return
            if item is None:
                continue
            job, epoch, chunk_time = item
            old = stamp_problem(job.stamp, now_sec(self), self.params["max_observation_age"],
                                self.params["future_stamp_tolerance"], "observation", "max_observation_age")
            if old or epoch != self.scheduler.reset_epoch:
                self.scheduler.count_stale_frames()
                continue
            start = time.perf_counter()
            self.frame_job = job  # close() cancels it
            try:
                frames, times = job.run(self._pause_frames)
                if any(not np.all(np.isfinite(np.asarray(f, dtype=np.float32))) for f in frames):
                    raise BadPrediction("non-finite predicted frames")
            except (ValueError, RuntimeError) as exc:  # BadPrediction included
                self._drop("bad_prediction" if isinstance(exc, BadPrediction) else "backend_error",
                           f"predicted frames dropped: {exc}; world state reset (the chunk was already sent)")
                continue
            if job.cancel.is_set():  # the node is closing
                return
            if epoch != self.scheduler.reset_epoch:  # reset while they were made
                self.scheduler.count_stale_frames()
                continue
            took = time.perf_counter() - start
            self.frame_latency.add(took)
            pred = PredictionData(job.stamp, frames, times, job.chunk, latency=chunk_time + took)
            self.future_pub.publish(future_to_msg(pred, self.params["frame_id"], self.params["publish_frames"]))

    def _pause_frames(self) -> None:
        """Called by the frame job between layers: wait while a control prediction runs (two vCPUs
        may be one core's two hyperthreads; control then has the core to itself)."""
        while not self.control_idle.wait(0.5) and self.frame_job is not None and not self.frame_job.cancel.is_set():
            pass

    def _drop(self, key: str, message: str) -> None:
        """Count, warn, clear the history and have the inference thread reset the world state."""
        self.dropped += 1
        self._warn(key, message)
        with self.cond:
            self.history.clear()
        self.scheduler.request_reset()

    # -- services and action ------------------------------------------------------------------
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
        # The text as set, so a caller can see what arrived: ROS 2 strings end at a NUL byte, and the
        # caller's own client library cuts one off before anything is sent.
        shown = text if len(text) <= 80 else text[:77] + "..."
        response.success, response.message = True, f"instruction set ({len(text)} characters): {shown!r}"
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

    def _imagine_goal(self, _goal):
        if self.scheduler.reserve_imagine():
            return GoalResponse.ACCEPT
        self._warn("imagine_refused", f"Imagine goal refused: {self.params['imagine_queue']} goals already "
                                      "queued or running (imagine_queue)")
        return GoalResponse.REJECT

    def _imagine_cancel(self, goal_handle):
        job = self.imagine_jobs.get(bytes(goal_handle.goal_id.uuid))
        if job is not None:
            self.scheduler.cancel_imagine(job)  # still queued: it ends now; running: it ends as canceled after
        return CancelResponse.ACCEPT

    async def _imagine(self, goal_handle):
        try:
            return await self._imagine_reserved(goal_handle)
        finally:
            self.imagine_jobs.pop(bytes(goal_handle.goal_id.uuid), None)
            self.scheduler.release_imagine()

    async def _imagine_reserved(self, goal_handle):
        result = Imagine.Result()

        def end(message: str):
            result.success, result.message = False, message
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
            else:
                goal_handle.abort()
            return result

        try:
            candidate = chunk_from_msg(goal_handle.request.candidate)
            validate_chunk(candidate, self.spec)
        except (ValueError, ChunkError) as exc:
            return end(f"candidate refused: {exc}")
        with self.cond:
            history = self.history.snapshot()
        if not history:
            return end("no observation received yet")
        if goal_handle.is_cancel_requested:
            return end("canceled")
        goal_handle.publish_feedback(Imagine.Feedback(progress=0.0))
        # The inference thread (or a cancel/expiry) completes the future; the executor resumes this
        # coroutine then.
        future = Future(executor=self.executor)
        future.add_done_callback(lambda _f: None)
        self.imagine_jobs[bytes(goal_handle.goal_id.uuid)] = self.scheduler.submit_imagine(
            (history, candidate), future.set_result)
        pred = await future
        if isinstance(pred, Cancelled) or goal_handle.is_cancel_requested:
            return end("canceled" if isinstance(pred, Cancelled) else "canceled (the prediction ran and is discarded)")
        if isinstance(pred, Exception):
            return end(f"{'not run' if not isinstance(pred, (ValueError, RuntimeError)) else 'backend failed'}: {pred}")
        goal_handle.publish_feedback(Imagine.Feedback(progress=1.0))
        result.success = True
        result.message = pred.extras.get("message") or f"imagined {len(pred.frames)} frames"
        result.future = future_to_msg(pred, self.params["frame_id"], True)
        scores = {k: float(v) for k, v in pred.extras.items() if k != "message" and isinstance(v, (int, float))}
        result.score_names, result.scores = list(scores), list(scores.values())
        goal_handle.succeed()
        return result

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
        if self.startup_warning:
            level, message = max(int(level), 1), f"{self.startup_warning}; {message}"
        if "slow_inference" in message and self.stage_times.last_late:  # which stage made the last chunk late
            message = f"{message}; last late {self.stage_times.last_late}"
        msg.health, msg.message = int(level), message
        self.status_pub.publish(msg)
        self.diag_pub.publish(diagnostic_array(self, "inference", self.problems, {
            **{f"scheduler.{k}": v for k, v in self.scheduler.counts.items()}, "imagine_active": self.scheduler.active,
            "backend": self.backend.name, "rate_hz": f"{msg.rate_hz:.2f}", "dropped": self.dropped,
            "latency_p50": f"{msg.latency_p50:.4f}", "latency_p99": f"{msg.latency_p99:.4f}",
            **self.stage_times.values(), **self._frame_values(),
            **getattr(self.backend, "diagnostics", dict)()}))  # remote: link state, reconnects, round trip

    def _frame_values(self) -> dict:
        pct = self.frame_latency.percentiles()
        return {"frames.p50_ms": f"{pct['p50'] * 1000:.1f}", "frames.count": pct["count"]} if pct.get("count") else {}

    def close(self) -> None:
        self.scheduler.stop()
        self.worker.join(timeout=2.0)
        if self.frame_worker is not None:
            if self.frame_job is not None:
                self.frame_job.cancel.set()  # a running job gives up at its next step
            self.frame_worker.join(timeout=10.0)
        if self.imagine_worker is not None:
            self.imagine_worker.join(timeout=2.0)


def main(args=None) -> int:
    return run_node(WorldModelNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
