"""What offline evaluation and bag datasets need from a bag: camera topics, joint topic, embodiment, truth series."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kairos_ros.core.embodiment import list_embodiments, load_embodiment
from kairos_ros.core.joints import JointStateError, order_joint_state
from kairos_ros.lib import bagio

IMAGE_TYPES = (bagio.IMAGE, bagio.COMPRESSED)
INSTRUCTION_TOPICS = ("/kairos/instruction", "/instruction")
_NAME_SKIP = {"image_raw", "image", "compressed", "image_rect", "image_color", "rgb"}


class EvalError(ValueError):
    """A bad evaluator argument (bag, topic, backend, embodiment); the message names the value."""


def default_layout(n_cameras: int) -> str:
    """The observation layout (core.observation) for a number of cameras when none is given."""
    return {1: "single", 3: "robotwin"}.get(n_cameras, "side_by_side")


def camera_name_from_topic(topic: str) -> str:
    """/cameras/head/image_raw -> head (the perception node's default naming)."""
    parts = [p for p in topic.split("/") if p and p not in _NAME_SKIP]
    return parts[-1] if parts else topic.strip("/").replace("/", "_")


def _camera_order(topic: str) -> tuple:
    """Auto-detected cameras: head/top views first (the robotwin layout's big tile), then by name."""
    name = camera_name_from_topic(topic).lower()
    return (0 if any(k in name for k in ("head", "top", "front", "agent")) else 1, topic)


@dataclass
class BagTopics:
    camera_topics: list[str]
    camera_names: list[str]
    compressed: list[bool]
    joint_topic: str
    instruction_topic: str | None


def match_recorded_topics(types: dict, wanted: list[str]) -> list[str]:
    """A camera topic absent from the bag but recorded as its image_transport '/compressed' variant
    is that camera (a perception node given the compressed topic reads it); `types` is
    bagio.topic_table(reader)."""
    out = []
    for t in wanted:
        if t not in types and f"{t.rstrip('/')}/compressed" in types:
            t = f"{t.rstrip('/')}/compressed"
        out.append(t)
    return out


def select_topics(reader, cameras: list[str] | None, camera_names: list[str] | None,
                  joint_topic: str) -> BagTopics:
    """Check or auto-detect the topics to replay; EvalError names a missing or mistyped topic."""
    types = bagio.topic_table(reader)
    image_topics = [t for t, v in types.items() if v["type"] in IMAGE_TYPES and v["count"] > 0]
    if cameras:
        for topic in cameras:
            if topic not in types:
                raise EvalError(f"camera topic '{topic}' is not in the bag (image topics: {image_topics})")
            if types[topic]["type"] not in IMAGE_TYPES:
                raise EvalError(f"camera topic '{topic}' has type {types[topic]['type']}, not an image type")
        topics = list(cameras)
    else:
        topics = sorted(image_topics, key=_camera_order)
        if not topics:
            raise EvalError(f"no sensor_msgs Image or CompressedImage topic in the bag (topics: {list(types)})")
    names = list(camera_names) if camera_names else [camera_name_from_topic(t) for t in topics]
    if len(names) != len(topics):
        raise EvalError(f"--camera-names has {len(names)} entries but there are {len(topics)} camera topics")
    if len(set(names)) != len(names):
        raise EvalError(f"camera names {names} are not distinct (name them with --camera-names)")
    if joint_topic not in types or types[joint_topic]["type"] != bagio.JOINT_STATE:
        found = [t for t, v in types.items() if v["type"] == bagio.JOINT_STATE]
        raise EvalError(f"joint topic '{joint_topic}' is not a sensor_msgs/JointState topic of the bag "
                        f"(JointState topics: {found})")
    instruction = next((t for t in INSTRUCTION_TOPICS if types.get(t, {}).get("type") == bagio.STRING), None)
    return BagTopics(topics, names, [types[t]["type"] == bagio.COMPRESSED for t in topics], joint_topic,
                     instruction)


def connections(reader, topics: list[str]):
    return [c for c in reader.connections if c.topic in topics]


@dataclass
class JointSeries:
    """Every joint state of the bag in the embodiment's joint order (the ground truth)."""

    stamps: np.ndarray  # (N,) header stamps, seconds, increasing
    positions: np.ndarray  # (N, J)
    names_seen: list[str]  # joint names of the first message, as recorded


def first_joint_names(reader, joint_topic: str) -> list[str]:
    for conn, _t, raw in reader.messages(connections=connections(reader, [joint_topic])):
        return list(reader.deserialize(raw, conn.msgtype).name)
    raise EvalError(f"joint topic '{joint_topic}' has no messages")


def load_joint_series(reader, joint_topic: str, joint_names: list[str], ignore: list[str],
                      embodiment: str = "") -> JointSeries:
    """Read and order all joint states; messages that do not fit the embodiment are skipped."""
    stamps, rows, seen = [], [], []
    for conn, _t, raw in reader.messages(connections=connections(reader, [joint_topic])):
        msg = reader.deserialize(raw, conn.msgtype)
        seen = seen or list(msg.name)
        try:
            pos, _vel = order_joint_state(list(msg.name), msg.position, None, joint_names, ignore)
        except JointStateError:
            continue
        stamps.append(bagio.stamp_sec(msg.header))
        rows.append(np.asarray(pos, dtype=np.float64))
    if not rows:
        raise EvalError(f"no message on '{joint_topic}' carries the joints of embodiment '{embodiment}' "
                        f"{joint_names} (recorded: {seen})")
    stamps_arr = np.asarray(stamps)
    order = np.argsort(stamps_arr, kind="stable")  # truth is a function of time, whatever the log order
    return JointSeries(stamps_arr[order], np.stack(rows)[order], seen)


def camera_period(reader, topic: str) -> float:
    """Median spacing of a camera's log times (s); 0.1 when it cannot be told."""
    times = [t for _c, t, _r in reader.messages(connections=connections(reader, [topic]))]
    if len(times) < 2:
        return 0.1
    diffs = np.diff(np.asarray(times, dtype=np.int64)) * 1e-9
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else 0.1


def known_embodiments() -> dict[str, list[str]]:
    """Every embodiment's joint names (urdf_adapters/), the candidates detect_embodiment picks from."""
    return {name: list(load_embodiment(name).joint_names) for name in list_embodiments()}


def detect_embodiment(joint_names: list[str], candidates: dict[str, list[str]] | None = None) -> str:
    """The candidate (default: every known embodiment) whose joints the bag carries, preferring an
    exact match, then the largest subset."""
    candidates = known_embodiments() if candidates is None else candidates
    have = set(joint_names)
    exact = [n for n, j in candidates.items() if set(j) == have]
    if exact:
        return exact[0]
    subsets = sorted((len(j), n) for n, j in candidates.items() if j and set(j) <= have)
    if subsets:
        return subsets[-1][1]
    raise EvalError(f"no known embodiment ({sorted(candidates)}) matches the joints {joint_names} "
                    "(pass --embodiment NAME or an adapter.yaml path)")
