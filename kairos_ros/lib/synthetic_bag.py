"""A small deterministic rosbag2 of a synthetic robot: cameras, joint states, commands, instruction.

What kairos-make-bag (tools/make_bag.py) writes and kairos-train's synthetic episodes render.

Topics (header stamps equal the bag log times; camera k is offset by k * 2 ms, like real cameras
that are not triggered together):
  /cameras/<name>/image_raw             sensor_msgs/msg/Image, rgb8 (bgr8 for --bgr8-camera)
  /cameras/<name>/image_raw/compressed  sensor_msgs/msg/CompressedImage for --compressed-camera
                                        (format "rgb8; jpeg compressed bgr8" as image_transport)
  /joint_states                         sensor_msgs/msg/JointState: the embodiment's joints in
                                        its order, positions and velocities, then its
                                        ignore_joints (a URDF mimic joint follows its
                                        master; any other stays mid-range)
  /joint_commands                       sensor_msgs/msg/JointState: the recorded commands, i.e. the
                                        target each driven joint reaches --command-lead seconds
                                        later (position and velocity at t + lead), stamped t
  /instruction                          std_msgs/msg/String, once at the start: the task text
Same arguments -> byte-identical message payloads (content is a pure function of seed and time,
see kairos_ros/lib/synthetic.py). The format choice (rosbag2 version 8, zstd MCAP chunks) is
explained in kairos_ros/lib/bagio.py. The arguments are stored in the bag's custom_data.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.urdf import read_urdf
from kairos_ros.lib import bagio
from kairos_ros.lib.synthetic import JointMotion, Scene, is_gripper

CAMERA_NAMES = ("head", "left_wrist", "right_wrist")
CAMERA_OFFSET_NS = 2_000_000
DEFAULT_INSTRUCTION = "pick up the red block and place it in the blue bowl"


def grid_ns(start_ns: int, rate: float, duration: float, offset_ns: int = 0) -> list[int]:
    """Integer-nanosecond stamps start + offset + i / rate for every i with i / rate < duration."""
    count = int(np.floor(duration * rate - 1e-9)) + 1
    return [start_ns + offset_ns + int(round(i * 1e9 / rate)) for i in range(count)]


def encode_compressed(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        PILImage.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    else:
        PILImage.fromarray(rgb).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


class Messages:
    """Builds CDR payloads of the bag's message types with the Humble typestore."""

    def __init__(self):
        self.ts = bagio.typestore()
        t = self.ts.types
        self.Time, self.Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
        self.Image, self.Compressed = t[bagio.IMAGE], t[bagio.COMPRESSED]
        self.JointState, self.String = t[bagio.JOINT_STATE], t[bagio.STRING]

    def header(self, stamp_ns: int, frame_id: str):
        return self.Header(stamp=self.Time(*bagio.split_ns(stamp_ns)), frame_id=frame_id)

    def image(self, stamp_ns, frame_id, rgb: np.ndarray, encoding: str) -> bytes:
        pixels = rgb[..., ::-1] if encoding == "bgr8" else rgb
        h, w = rgb.shape[:2]
        msg = self.Image(header=self.header(stamp_ns, frame_id), height=h, width=w, encoding=encoding,
                         is_bigendian=0, step=w * 3, data=np.ascontiguousarray(pixels).reshape(-1))
        return bytes(self.ts.serialize_cdr(msg, bagio.IMAGE))

    def compressed(self, stamp_ns, frame_id, fmt: str, data: bytes) -> bytes:
        msg = self.Compressed(header=self.header(stamp_ns, frame_id), format=fmt,
                              data=np.frombuffer(data, dtype=np.uint8))
        return bytes(self.ts.serialize_cdr(msg, bagio.COMPRESSED))

    def joint_state(self, stamp_ns, names, pos, vel) -> bytes:
        msg = self.JointState(header=self.header(stamp_ns, "base_link"), name=list(names),
                              position=np.asarray(pos, dtype=np.float64),
                              velocity=np.asarray(vel, dtype=np.float64), effort=np.zeros(0, dtype=np.float64))
        return bytes(self.ts.serialize_cdr(msg, bagio.JOINT_STATE))

    def string(self, text: str) -> bytes:
        return bytes(self.ts.serialize_cdr(self.String(data=text), bagio.STRING))


def camera_topic(name: str, compressed: bool) -> str:
    return f"/cameras/{name}/image_raw" + ("/compressed" if compressed else "")


def followers(spec, extra: list[str]) -> list[tuple[int, float, float]]:
    """For each ignored joint: (index of the driven joint it mimics, multiplier, offset) from the
    URDF's <mimic>, or (-1, 0, middle of its range) for a joint that follows nothing driven."""
    urdf = read_urdf(spec.urdf_path)
    out = []
    for name in extra:
        master, mult, off = spec.mimic.get(name, ("", 0.0, 0.0))
        if master in spec.joint_names:
            out.append((spec.joint_names.index(master), mult, off))
        else:
            j = urdf.joints[name]
            mid = 0.5 * (j.lower + j.upper) if np.isfinite(j.lower) and np.isfinite(j.upper) else 0.0
            out.append((-1, 0.0, mid))
    return out


def synthetic_robot(spec, seed: int, camera_names, width: int, height: int):
    """The joint motion and the camera scenes of a recording of `spec` (also kairos-train's episodes)."""
    names = list(spec.joint_names)
    grippers = [slot.endswith("gripper") or is_gripper(n) for n, slot in zip(names, spec.slot_names)]
    motion = JointMotion(names, spec.lower, spec.upper, seed, grippers, spec.max_velocity, spec.max_acceleration)
    # Slot names say which arm a joint belongs to (left_arm.*, right_arm.*) whatever the robot calls it.
    scenes = [Scene(cam, k, width, height, list(spec.slot_names), seed, grippers) for k, cam in enumerate(camera_names)]
    return motion, scenes


def make_bag(args: argparse.Namespace) -> dict:
    """Write the bag described by parsed arguments; returns {topic: message count}."""
    spec = load_embodiment(args.embodiment)
    names = list(spec.joint_names)
    motion, scenes = synthetic_robot(spec, args.seed, args.camera_names, args.width, args.height)
    extra = list(spec.ignore_joints)
    follow = followers(spec, extra)
    start_ns = int(round(args.start_time * 1e9))
    msgs = Messages()
    events = [(start_ns, 0, "instruction", 0)]
    joint_ns = grid_ns(start_ns, args.joint_rate, args.duration)
    events += [(t, 1, "joints", i) for i, t in enumerate(joint_ns)]
    events += [(t, 2, "commands", i) for i, t in enumerate(joint_ns)]
    for k in range(len(scenes)):
        events += [(t, 3 + k, f"camera{k}", t) for t in grid_ns(start_ns, args.camera_rate, args.duration,
                                                                  k * CAMERA_OFFSET_NS)]
    events.sort()
    out = Path(args.output)
    if out.exists() and args.force:
        if any(out.iterdir()) and not (out / "metadata.yaml").exists():
            raise FileExistsError(f"'{out}' exists and is not a bag folder: not replacing it")
        shutil.rmtree(out)
    writer = bagio.open_writer(out, args.storage, compress=not args.no_compress)
    counts: dict[str, int] = {}
    try:
        writer.set_custom_data("kairos.make_bag", json.dumps(
            {k: v for k, v in sorted(vars(args).items()) if k not in ("output", "force")}))
        conns = {"instruction": writer.add_connection("/instruction", bagio.STRING, typestore=msgs.ts),
                 "joints": writer.add_connection("/joint_states", bagio.JOINT_STATE, typestore=msgs.ts),
                 "commands": writer.add_connection("/joint_commands", bagio.JOINT_STATE, typestore=msgs.ts)}
        for k, cam in enumerate(args.camera_names):
            compressed = cam == args.compressed_camera
            conns[f"camera{k}"] = writer.add_connection(camera_topic(cam, compressed),
                                                        bagio.COMPRESSED if compressed else bagio.IMAGE,
                                                        typestore=msgs.ts)
        t_joint = (np.asarray(joint_ns, dtype=np.int64) - start_ns) * 1e-9
        pos, vel = motion.state(t_joint)
        state_pos = np.hstack([pos] + [m * pos[:, [i]] + o if i >= 0 else np.full((len(pos), 1), o)
                                       for i, m, o in follow])
        state_vel = np.hstack([vel] + [m * vel[:, [i]] if i >= 0 else np.zeros((len(vel), 1))
                                       for i, m, _o in follow])
        cmd_pos, cmd_vel = motion.state(t_joint + args.command_lead)
        for stamp, _prio, kind, index in events:
            if kind == "instruction":
                data = msgs.string(args.instruction)
            elif kind == "joints":
                data = msgs.joint_state(stamp, names + extra, state_pos[index], state_vel[index])
            elif kind == "commands":
                data = msgs.joint_state(stamp, names, cmd_pos[index], cmd_vel[index])
            else:
                k = int(kind[len("camera"):])
                cam = args.camera_names[k]
                rgb = scenes[k].render(motion.normalised((stamp - start_ns) * 1e-9)[0])
                frame_id = f"{cam}_optical_frame"
                if cam == args.compressed_camera:
                    fmt = f"rgb8; {args.compressed_format} compressed bgr8"
                    data = msgs.compressed(stamp, frame_id, fmt,
                                           encode_compressed(rgb, args.compressed_format, args.jpeg_quality))
                else:
                    data = msgs.image(stamp, frame_id, rgb, "bgr8" if cam == args.bgr8_camera else "rgb8")
            writer.write(conns[kind], stamp, data)
            topic = conns[kind].topic
            counts[topic] = counts.get(topic, 0) + 1
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return counts


def bag_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
