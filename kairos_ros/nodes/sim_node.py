"""Simulated robot driver: one SimTask (kairos_ros.lib.sim) behind the topics a real robot's driver
and its ros2_control joint_trajectory_controller offer.

  in   <trajectory_topic>        trajectory_msgs/JointTrajectory (default: the embodiment's
                                 adapter.yaml controller_topic), executed by core.jtc with
                                 joint_trajectory_controller semantics; rejected trajectories are
                                 warned about with their reason and counted in /diagnostics
  out  /joint_states             sensor_msgs/JointState: every joint of the task (mimic followers
                                 included), positions and velocities, at joint_state_rate
       /cameras/<name>/image_raw sensor_msgs/Image rgb8 per camera of the task, at camera_rate
       /kairos/sim/success       std_msgs/Bool, /kairos/sim/reward std_msgs/Float64 and
       /kairos/sim/done          std_msgs/Bool (the episode reached its length), with the joint states
       /clock                    rosgraph_msgs/Clock every control period, when publishing the clock
       /diagnostics
  srv  ~/reset                   kairos_msgs/ResetSim: a new episode from a seed (negative: the
                                 previous seed + 1); the same seed gives the same scene, and the
                                 episode's first joint state and frames carry the stamp it returns

Time: a thread steps the physics one control period at a time, commanding the positions the
trajectory executor samples at the start of the period, and sleeps until the wall-clock deadline
of the period's end (deadlines from one anchor: no drift) before publishing what that instant
shows, so nothing is stamped ahead of the clock. With real_time_factor 1 and no /clock the sim
clock is the wall clock (ROS time): it starts at the time of start-up, and when the simulation falls
more than max_lag behind, the clock jumps forward to the wall clock again (counted as
behind_real_time; the skipped time is not simulated). With publish_clock (by default whenever
real_time_factor is not 1) the node publishes /clock from 0 and the rest of the graph runs on
use_sim_time; a simulation slower than its factor then simply runs slower.

Episodes: the node starts episode 1 from `seed`. At episode_length (default the task's) the episode
is done: the arm holds where it was commanded, /kairos/sim/done turns true, trajectories are
refused (episode_over) until ~/reset; the physics keeps running so the clock and topics go on.
"""
from __future__ import annotations

import math
import queue
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64
from trajectory_msgs.msg import JointTrajectory

from kairos_msgs.srv import ResetSim
from kairos_ros.core.diagnostics import ERROR, ProblemCounter, RateMeter
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.jtc import Trajectory, TrajectoryExecutor, TrajectoryPoint
from kairos_ros.core.params import ParameterError
from kairos_ros.lib.rostime import to_sec, to_time
from kairos_ros.lib.sim.registry import TASKS, make_task, task_names
from kairos_ros.nodes.common import declare_schema, diagnostic_array, rgb_to_image_msg, run_node, warn_problem
from kairos_ros.params.sim import SCHEMA

STARTUP_TIMEOUT = 300.0  # s for the task's models to load (first import of MuJoCo, assets)


def camera_topic(camera: str) -> str:
    return f"/cameras/{camera}/image_raw"


def _duration_sec(d) -> float:
    return d.sec + d.nanosec * 1e-9


def trajectory_from_msg(msg: JointTrajectory) -> Trajectory:
    return Trajectory(list(msg.joint_names), to_sec(msg.header.stamp),
                      [TrajectoryPoint(_duration_sec(p.time_from_start), list(p.positions), list(p.velocities),
                                       list(p.accelerations), list(p.effort)) for p in msg.points])


class SimNode(Node):
    def __init__(self):
        super().__init__("sim")
        p = declare_schema(self, SCHEMA)
        self.params = p

        if p["task"] not in TASKS:
            raise ParameterError(f"parameter 'task' = {p['task']!r} is not a known task (known: {task_names()})")
        self.problems = ProblemCounter("sim")
        self.js_rate, self.cam_rate, self.step_rate = RateMeter(), RateMeter(), RateMeter()
        self.accepted = 0
        self.rejected = 0
        self._stop = threading.Event()
        self._go = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._resets: queue.Queue = queue.Queue()
        self._state_lock = threading.Lock()  # the episode fields below, read by diagnostics
        self.episode = 0
        self.episode_start = 0.0  # sim clock at the newest reset
        self.seed = p["seed"]
        self.done = False
        self.success = False
        self.reward = 0.0
        self.task = None
        # Everything that touches the task (and its GL renderers) runs on one thread.
        self._thread = threading.Thread(target=self._run, name="sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT) or self._failure is not None:
            self._stop.set()
            self._go.set()
            reason = self._failure if self._failure is not None else f"not loaded within {STARTUP_TIMEOUT} s"
            raise ParameterError(f"parameter 'task' = {p['task']!r}: the task did not start: {reason}")
        try:
            self._configure()
        except Exception:
            self._stop.set()
            self._go.set()
            self._thread.join(10.0)
            raise
        self._go.set()

    # -- set-up ----------------------------------------------------------------------------------
    def _configure(self) -> None:
        p, task, info = self.params, self.task, self.task.info
        try:
            self.spec = load_embodiment(info.embodiment)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ParameterError(f"parameter 'task' = {p['task']!r}: embodiment {info.embodiment!r}: {exc}") from exc
        names = list(task.joint_names)
        ignore = set(self.spec.ignore_joints)
        self.controlled = [n for n in names if n not in ignore]
        self.ctrl_index = np.array([names.index(n) for n in self.controlled])
        spec_index = {n: i for i, n in enumerate(self.spec.joint_names)}
        lower = np.asarray(task.lower, dtype=np.float64)[self.ctrl_index]
        upper = np.asarray(task.upper, dtype=np.float64)[self.ctrl_index]
        vmax = np.full(len(self.controlled), math.inf)
        for k, n in enumerate(self.controlled):
            if n in spec_index:  # narrower of the simulated model's and the adapter's limits
                i = spec_index[n]
                lower[k] = max(lower[k], float(self.spec.lower[i]))
                upper[k] = min(upper[k], float(self.spec.upper[i]))
                vmax[k] = float(self.spec.max_velocity[i])
        self.jtc = TrajectoryExecutor(
            self.controlled, lower, upper, vmax, allow_partial_joints_goal=p["allow_partial_joints_goal"],
            allow_nonzero_velocity_at_trajectory_end=p["allow_nonzero_velocity_at_trajectory_end"],
            velocity_tolerance=p["velocity_tolerance"], start_tolerance=p["start_tolerance"])
        self.dt = float(info.control_period)
        self.episode_length = p["episode_length"] or float(info.episode_length)
        self.rtf = p["real_time_factor"]
        self.publish_clock = p["publish_clock"] == "true" or (p["publish_clock"] == "auto" and self.rtf != 1.0)
        # the sim clock is the wall clock (ROS time) only at real time without /clock
        self.wall_locked = not self.publish_clock and self.rtf == 1.0
        cameras = list(info.cameras) if p["camera_rate"] > 0 else []
        topics = p["camera_topics"] or [camera_topic(c) for c in info.cameras]
        if len(topics) != len(info.cameras):
            raise ParameterError(f"parameter 'camera_topics' = {p['camera_topics']!r} must name one topic per camera "
                                 f"of task '{info.name}': {list(info.cameras)}")
        control_rate = 1.0 / self.dt
        for name in ("joint_state_rate", "camera_rate"):
            if p[name] > control_rate * (1 + 1e-9):
                self.get_logger().warning(f"parameter '{name}' = {p[name]} Hz is above the control rate "
                                          f"{control_rate:g} Hz: published every control period")
        self.js_period = max(1.0 / p["joint_state_rate"], self.dt)
        self.cam_period = max(1.0 / p["camera_rate"], self.dt) if cameras else math.inf
        if not self.publish_clock and self.rtf != 1.0:
            self.get_logger().warning(f"real_time_factor {self.rtf} without /clock: stamps drift away from the wall "
                                      "clock (publish_clock 'auto' or 'true' lets the graph follow)")
        topic = p["trajectory_topic"] or self.spec.controller_topic
        self.js_pub = self.create_publisher(JointState, p["joint_states_topic"], 10)
        self.cam_pubs = {c: self.create_publisher(Image, t, 5) for c, t in zip(info.cameras, topics) if c in cameras}
        self.success_pub = self.create_publisher(Bool, p["success_topic"], 10)
        self.reward_pub = self.create_publisher(Float64, p["reward_topic"], 10)
        self.done_pub = self.create_publisher(Bool, p["done_topic"], 10)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(JointTrajectory, topic, self._on_trajectory, 10)
        self.create_service(ResetSim, "~/reset", self._on_reset)
        self.create_timer(p["diagnostics_period"], self._diagnostics)
        # The sim clock: the wall clock (ROS time) unless publishing /clock, which starts at 0.
        self.clock = 0.0 if self.publish_clock else self._wall()  # without /clock: from the wall clock
        self.get_logger().info(
            f"sim '{info.name}' ({info.embodiment}): {len(self.controlled)} controlled joints <- {topic}; "
            f"{len(self.cam_pubs)} cameras {p['image_width']}x{p['image_height']} at {p['camera_rate']:g} Hz; "
            f"joint states at {p['joint_state_rate']:g} Hz; real-time factor {self.rtf:g}"
            f"{', publishing /clock' if self.publish_clock else ''}; episode {self.episode_length:g} s, "
            f"seed {self.seed}")

    # -- the simulation thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.task = make_task(self.params["task"])
        except Exception as exc:  # noqa: BLE001 - reported by the constructor, naming the task
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._go.wait()
        try:
            if not self._stop.is_set():
                self._start_episode(self.seed)
                self._loop()
        except Exception as exc:  # noqa: BLE001 - the simulation cannot go on: say so loudly
            if rclpy.ok():
                self.problems.problem("sim_failed", f"simulation stopped: {exc!r}", level=ERROR)
                self.get_logger().error(f"simulation stopped: {exc!r}")
        finally:
            try:
                self.task.close()
            except Exception as exc:  # noqa: BLE001
                self.get_logger().warning(f"closing the task: {exc!r}")

    def _wall(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _anchor(self) -> tuple[float, float]:
        """(monotonic instant, sim clock that instant stands for): the wall clock itself when wall-locked,
        else the sim clock now (it runs on from wherever it is)."""
        return time.monotonic(), (self._wall() if self.wall_locked else self.clock)

    def _loop(self) -> None:
        anchor_mono, anchor_clock = self._anchor()
        while not self._stop.is_set():
            if not self._resets.empty():
                self._serve_resets()
                anchor_mono, anchor_clock = self._anchor()
            targets, _ = self.task.joint_state()
            targets = targets.copy()
            targets[self.ctrl_index] = self.jtc.sample(self.clock)
            self.task.step(targets)
            next_clock = self.clock + self.dt
            # frames due at the period's end are rendered before waiting for it: published on time
            frames = self._render() if next_clock >= self._next_cam - 1e-9 else None
            delay = anchor_mono + (next_clock - anchor_clock) / self.rtf - time.monotonic()
            if delay > 0:
                if self._stop.wait(delay):
                    break
            elif -delay > self.params["max_lag"]:
                lag = -delay
                if self.wall_locked:  # stamps must stay on the wall clock: jump forward
                    next_clock = max(next_clock, self._wall())
                anchor_mono, anchor_clock = time.monotonic(), next_clock
                warn_problem(self, self.problems, "behind_real_time", f"simulation {lag:.3f} s behind its "
                             f"deadline at real-time factor {self.rtf:g}"
                             f"{': clock jumped forward to the wall clock' if self.wall_locked else ''}")
            self.clock = next_clock
            self.step_rate.tick()
            self._after_step(frames)

    def _after_step(self, frames: dict | None) -> None:
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=to_time(self.clock)))
        task = self.task
        if not self.done and task.time >= self.episode_length - 1e-9:
            self.jtc.hold(self.clock)
            with self._state_lock:
                self.done = True
            self.get_logger().info(f"episode {self.episode} (seed {self.seed}) done after {task.time:.2f} s: "
                                   f"success {task.success()}, reward {task.reward():g}; holding until ~/reset")
        eps = 1e-9
        if self.clock >= self._next_js - eps:
            self._publish_state()
            self._next_js = max(self._next_js + self.js_period, self.clock + self.dt / 2)
        if frames is not None:
            self._publish_frames(frames)
            self._next_cam = max(self._next_cam + self.cam_period, self.clock + self.dt / 2)

    def _start_episode(self, seed: int) -> None:
        """Reset the task (on the sim thread) and publish the episode's first state and frames, all
        stamped with the sim clock once they are ready (the scene does not move meanwhile)."""
        self.task.reset(seed)
        frames = self._render()
        if self.wall_locked:  # a reset takes wall time: the wall-clock sim clock catches up
            self.clock = max(self.clock, self._wall())
        positions, _ = self.task.joint_state()
        self.jtc.reset(positions[self.ctrl_index], self.clock)
        with self._state_lock:
            self.seed = seed
            self.episode += 1
            self.done = False
            self.episode_start = self.clock
        self._publish_state()
        self._publish_frames(frames)
        self._next_js = self.clock + self.js_period
        self._next_cam = self.clock + self.cam_period

    def _serve_resets(self) -> None:
        while True:
            try:
                seed, answer = self._resets.get_nowait()
            except queue.Empty:
                return
            if seed < 0:
                seed = self.seed + 1
            try:
                self._start_episode(seed)
                answer.update(success=True, seed=seed, stamp=self.clock,
                              message=f"episode {self.episode} started from seed {seed}")
            except Exception as exc:  # noqa: BLE001 - answered, not fatal
                answer.update(success=False, seed=seed, stamp=self.clock,
                              message=f"reset with seed {seed} failed: {exc!r}")
            answer["event"].set()

    def _publish_state(self) -> None:
        task = self.task
        positions, velocities = task.joint_state()
        msg = JointState()
        msg.header.stamp = to_time(self.clock)
        msg.name = list(task.joint_names)
        msg.position = [float(x) for x in positions]
        msg.velocity = [float(x) for x in velocities]
        success, reward = bool(task.success()), float(task.reward())
        with self._state_lock:
            self.success, self.reward, done = success, reward, self.done
        self.js_pub.publish(msg)
        self.success_pub.publish(Bool(data=success))
        self.reward_pub.publish(Float64(data=reward))
        self.done_pub.publish(Bool(data=done))
        self.js_rate.tick()

    def _render(self) -> dict:
        """camera -> RGB frame of the scene now."""
        frames = {}
        w, h = self.params["image_width"], self.params["image_height"]
        for camera in self.cam_pubs:
            try:
                frames[camera] = self.task.render(camera, w, h)
            except Exception as exc:  # noqa: BLE001 - a frame lost is counted, the robot goes on
                warn_problem(self, self.problems, f"render_failed.{camera}", f"camera '{camera}': {exc!r}")
        return frames

    def _publish_frames(self, frames: dict | None = None) -> None:
        if not self.cam_pubs:
            return
        frames = self._render() if frames is None else frames
        stamp = to_time(self.clock)
        for camera, rgb in frames.items():
            self.cam_pubs[camera].publish(rgb_to_image_msg(rgb, stamp, frame_id=camera))
        self.cam_rate.tick()

    # -- ROS callbacks -----------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if self.done:
            self.rejected += 1
            self.problems.problem("rejected.episode_over", "episode over")
            warn_problem(self, self.problems, "rejected_trajectory", "trajectory rejected: the episode is over "
                         "(holding until ~/reset)")
            return
        traj = trajectory_from_msg(msg)
        if 0.0 < traj.stamp < self.episode_start:
            # Planned from the state before a reset (in flight while the scene was reset): its start
            # is wherever the robot was, not where the new episode put it.
            self.rejected += 1
            self.problems.problem("rejected.before_reset", "planned before the reset")
            warn_problem(self, self.problems, "rejected_trajectory", "trajectory rejected: stamped "
                         f"{traj.stamp:.3f}, before episode {self.episode} started at {self.episode_start:.3f} "
                         "(planned from the state before the reset)")
            return
        verdict = self.jtc.submit(traj, self.clock)
        if verdict.accepted:
            self.accepted += 1
            if not msg.points:
                self.get_logger().info(verdict.reason)
            self.problems.ok("rejected_trajectory")
            return
        self.rejected += 1
        self.problems.problem(f"rejected.{verdict.key}", verdict.reason)
        warn_problem(self, self.problems, "rejected_trajectory", f"trajectory rejected: {verdict.reason}")

    def _on_reset(self, request, response):
        answer = {"event": threading.Event()}
        if not self._thread.is_alive():
            response.success, response.message = False, "the simulation is not running"
            return response
        self._resets.put((int(request.seed), answer))
        if not answer["event"].wait(self.params["reset_timeout"]):
            response.success = False
            response.message = f"the simulation thread did not reset within {self.params['reset_timeout']} s"
            return response
        response.success, response.message = answer["success"], answer["message"]
        response.seed = int(answer["seed"])
        response.stamp = to_time(answer["stamp"])
        (self.get_logger().info if response.success else self.get_logger().warning)(f"~/reset: {response.message}")
        return response

    def _diagnostics(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():  # stays an error while the node lives
            self.problems.problem("sim_failed", "the simulation thread has stopped", level=ERROR)
        with self._state_lock:
            extra = {"episode": self.episode, "seed": self.seed, "done": self.done, "success": self.success,
                     "reward": f"{self.reward:g}"}
        steps = self.step_rate.rate()
        extra.update({"task": self.task.info.name, "sim_time": f"{self.clock:.3f}",
                      "episode_time": f"{self.task.time:.3f}", "trajectories_accepted": self.accepted,
                      "trajectories_rejected": self.rejected, "joint_state_rate": f"{self.js_rate.rate():.1f}",
                      "camera_rate": f"{self.cam_rate.rate():.1f}",
                      "real_time_factor_measured": f"{steps * self.dt:.3f}",
                      "publish_clock": self.publish_clock})
        self.diag_pub.publish(diagnostic_array(self, "simulation", self.problems, extra))

    def close(self) -> None:
        """Stop the simulation thread (which closes the task and its renderers)."""
        self._stop.set()
        self._go.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10.0)


def main(args=None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
