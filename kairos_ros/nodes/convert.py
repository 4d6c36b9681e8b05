"""Conversions between kairos_msgs messages and the plain core types (no maths)."""
from __future__ import annotations

import numpy as np

from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture
from kairos_ros.core.observation import compose
from kairos_ros.core.types import ActionChunkData, JointStateData, ObservationData, PredictionData
from kairos_ros.lib.rostime import to_duration, to_sec, to_time
from kairos_ros.nodes.common import image_msg_to_rgb, rgb_to_image_msg


def observation_from_msg(msg: Observation, with_composed: bool = True) -> ObservationData:
    """Raises ValueError (ImageError, layout errors) on inconsistent content."""
    if len(msg.camera_names) != len(msg.images) or not msg.images:
        raise ValueError(f"observation has {len(msg.camera_names)} camera names and {len(msg.images)} images")
    images = [image_msg_to_rgb(img) for img in msg.images]
    js = msg.joint_state
    positions = np.asarray(js.position, dtype=np.float64)
    if len(js.name) != positions.shape[0]:
        raise ValueError(f"observation joint_state has {len(js.name)} names and {positions.shape[0]} positions")
    if not np.all(np.isfinite(positions)):
        bad = [n for n, x in zip(js.name, positions) if not np.isfinite(x)]
        raise ValueError(f"observation joint_state has non-finite positions for {bad}")
    velocities = np.asarray(js.velocity, dtype=np.float64) if len(js.velocity) == len(js.name) else None
    composed = compose(msg.layout, list(msg.camera_names), images) if with_composed else None
    return ObservationData(
        stamp=to_sec(msg.header.stamp), camera_names=list(msg.camera_names), images=images,
        joint_state=JointStateData(to_sec(js.header.stamp), list(js.name), positions, velocities),
        instruction=msg.instruction, composed=composed,
        image_stamps=[to_sec(img.header.stamp) for img in msg.images])


def observation_to_msg(obs: ObservationData, layout: str, frame_id: str = "") -> Observation:
    """The synchronised set as perception publishes it: raw images (each with its own stamp and the
    camera name as frame_id), the joint state with its stamp, the instruction."""
    msg = Observation()
    msg.header.stamp = to_time(obs.stamp)
    msg.header.frame_id = frame_id
    msg.camera_names = list(obs.camera_names)
    msg.layout = layout
    stamps = obs.image_stamps or [obs.stamp] * len(obs.images)
    msg.images = [rgb_to_image_msg(img, to_time(stamp), name) for img, stamp, name in
                  zip(obs.images, stamps, obs.camera_names)]
    js = obs.joint_state
    msg.joint_state.header.stamp = to_time(js.stamp)
    msg.joint_state.name = list(js.names)
    msg.joint_state.position = [float(x) for x in js.positions]
    if js.velocities is not None:
        msg.joint_state.velocity = [float(x) for x in js.velocities]
    msg.instruction = obs.instruction
    return msg


def chunk_to_msg(chunk: ActionChunkData, frame_id: str = "") -> ActionChunk:
    msg = ActionChunk()
    msg.header.stamp = to_time(chunk.stamp)
    msg.header.frame_id = frame_id
    msg.embodiment = chunk.embodiment
    msg.slot_names = list(chunk.slot_names)
    values = np.ascontiguousarray(chunk.values, dtype=np.float32)
    msg.horizon, msg.dim = int(values.shape[0]), int(values.shape[1])
    msg.values = values.ravel().tolist()
    msg.step_period = to_duration(chunk.step_period)
    msg.backend, msg.model = chunk.backend, chunk.model
    return msg


def plan_to_msg(plan, stamp: float) -> JointTrajectory:
    """A core.trajectory.TrajectoryPlan as the JointTrajectory the controller gets: every joint in
    order, time_from_start relative to `stamp` (docs/architecture.md, convention 5). Chunks and
    holds both go out through here."""
    traj = JointTrajectory()
    traj.header.stamp = to_time(stamp)
    traj.joint_names = list(plan.joint_names)
    traj.points = [JointTrajectoryPoint(positions=[float(x) for x in pos], velocities=[float(x) for x in vel],
                                        time_from_start=to_duration(float(t)))
                   for t, pos, vel in zip(plan.times, plan.positions, plan.velocities)]
    return traj


def chunk_from_msg(msg: ActionChunk) -> ActionChunkData:
    """Raises ValueError when horizon x dim does not match the number of values."""
    values = np.asarray(msg.values, dtype=np.float32)
    if msg.horizon * msg.dim != values.size:
        raise ValueError(f"action chunk declares horizon {msg.horizon} x dim {msg.dim} = "
                         f"{msg.horizon * msg.dim} values but carries {values.size}")
    return ActionChunkData(stamp=to_sec(msg.header.stamp), embodiment=msg.embodiment,
                           slot_names=list(msg.slot_names), values=values.reshape(msg.horizon, msg.dim),
                           step_period=to_sec(msg.step_period), backend=msg.backend, model=msg.model)


def future_to_msg(pred: PredictionData, frame_id: str = "", with_frames: bool = True) -> PredictedFuture:
    msg = PredictedFuture()
    msg.header.stamp = to_time(pred.stamp)
    msg.header.frame_id = frame_id
    if with_frames:
        msg.frames = [rgb_to_image_msg(f, to_time(pred.stamp + dt), frame_id)
                      for f, dt in zip(pred.frames, pred.frame_times)]
        msg.frame_times = [to_duration(dt) for dt in pred.frame_times]
    msg.chunk = chunk_to_msg(pred.chunk, frame_id)
    msg.inference_latency = to_duration(pred.latency)
    return msg
