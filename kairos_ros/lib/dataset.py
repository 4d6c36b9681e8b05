"""Training episodes from recorded rosbag2 bags, decoded once through the perception code.

Any bag kairos-eval reads (sqlite3 or MCAP; sensor_msgs Image or CompressedImage cameras;
sensor_msgs/JointState) is replayed, in log-time order, into the PerceptionPipeline the perception
node and kairos-eval run, with the node's publishing rule emulated in bag time exactly as
eval/offline.py does (a synchronised set is taken when an input arrives or the node's flush timer,
period / 2, fires, at most once per 0.9 / rate s). Each observation is composed as the world-model
node composes it. The result, per bag, is one `RecordedEpisode` (or several when the bag's stamps
jump backwards, e.g. a bag recorded from a looping player): the composed frames (T, H, W, 3) uint8,
the observation stamps, the observed joint states (T, J) in the embodiment's joint order (the
synchronised ones, what the backend sees), the whole joint-state series of the bag (the action
targets: joint states interpolated at any time, as kairos-eval's ground truth), and the
instruction (the bag's /instruction or /kairos/instruction topic if it has one, else the
profile's).

Decoding settings come from a bringup profile (config/<robot>.yaml: perception camera_topics /
camera_names / layout / tile size / slop / rate_hz / queue_size / joint_states_topic, world_model
instruction) or default to kairos-eval's (auto-detected cameras, head first; layout by camera
count). Decoded bags are cached as one .npz per bag under a cache directory, keyed by a hash of the
bag's metadata.yaml, its storage files (names, sizes, first and last 64 KiB) and the decoding
settings, so a second run loads them in well under a second per bag.

Every problem is a DatasetError (a ValueError) naming the bag and what is wrong; load_bags checks
all bags (decoding, joint names, cameras and their sizes) before it returns, so training never
starts on bad input.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kairos_ros.core.embodiment import load_embodiment, state_to_slots
from kairos_ros.core.image import DEFAULT_MAX_IMAGE_PIXELS, decode_compressed, image_to_rgb
from kairos_ros.core.joints import fit_velocity
from kairos_ros.core.observation import compose
from kairos_ros.core.params import ParameterError, load_ros_params_yaml
from kairos_ros.core.perception import PerceptionConfig, PerceptionPipeline
from kairos_ros.lib import bagio
from kairos_ros.lib.bagsource import (EvalError, camera_period, connections, default_layout, detect_embodiment,
                                      first_joint_names, load_joint_series, match_recorded_topics, select_topics)
from kairos_ros.lib.replay import ReplayHooks, replay

FORMAT = "kairos-dataset/1"
INSTRUCTION_TOPICS = ("/kairos/instruction", "/instruction")


class DatasetError(ValueError):
    """Bad training data: the message names the bag and what is wrong with it."""


# -- episodes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EpisodeConfig:
    camera_names: tuple
    layout: str
    tile_width: int
    tile_height: int
    camera_width: int = 128
    camera_height: int = 96
    camera_rate: float = 10.0  # observations per second
    duration: float = 30.0


class Episode:
    """Composed frames on the observation grid plus the robot's joint motion (the base of the
    synthetic episodes of train/data.py and of RecordedEpisode).

    Attributes: spec (EmbodimentSpec), cfg (EpisodeConfig), times (N,) s from the first frame,
    frames (N, H, W, 3) uint8, instruction (str, "" = the caller's default), source (str).
    Subclasses define joints(t)."""

    spec = None
    cfg: EpisodeConfig
    times: np.ndarray
    frames: np.ndarray
    instruction: str = ""
    source: str = ""

    def joints(self, t) -> np.ndarray:
        """Joint positions (T, J) float64 in the embodiment's joint order at times t (s from the start)."""
        raise NotImplementedError

    def slots(self, t) -> np.ndarray:
        """Slot values (T, D) float32 at times t (s from the episode start)."""
        return state_to_slots(self.spec, self.joints(np.atleast_1d(np.asarray(t, dtype=np.float64))))

    def action_slots(self, t) -> np.ndarray:
        """What the action chunk should hold at times t, (T, D) float32 slots: the joint states
        themselves unless the episode carries a separate action series (RecordedEpisode)."""
        return self.slots(t)

    def slot_velocity(self, t: float, fit: int) -> np.ndarray:
        """(D,) the slot velocity at time t fitted over the states of the last `fit` camera frames
        (t, t - 1/rate, ...), as the backend fits it over its observation history."""
        times = t - np.arange(fit - 1, -1, -1) / self.cfg.camera_rate
        return fit_velocity(times, self.slots(times)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.times)


def _interpolate(ts: np.ndarray, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """q (M, J) at stamps ts (M,) linearly interpolated at x (held before the first and after the last)."""
    if len(ts) == 1:
        return np.repeat(q, len(x), axis=0)
    x = np.clip(x, ts[0], ts[-1])
    i = np.clip(np.searchsorted(ts, x, side="right") - 1, 0, len(ts) - 2)
    w = ((x - ts[i]) / (ts[i + 1] - ts[i]))[:, None]
    return q[i] * (1 - w) + q[i + 1] * w


class RecordedEpisode(Episode):
    """One stretch of a bag as the perception node would have published it. With an action series
    (DecodeSettings.action_topic: the commanded positions, e.g. a teleoperation leader arm or a
    controller's targets), the chunks are learnt from it instead of from the measured joint states."""

    action_stamps: np.ndarray | None = None
    action_positions: np.ndarray | None = None

    def __init__(self, spec, cfg: EpisodeConfig, frames: np.ndarray, stamps: np.ndarray, observed: np.ndarray,
                 joint_stamps: np.ndarray, joint_positions: np.ndarray, instruction: str = "", source: str = "",
                 action_stamps: np.ndarray | None = None, action_positions: np.ndarray | None = None):
        self.spec, self.cfg = spec, cfg
        self.frames = frames  # (N, H, W, 3) uint8
        self.stamps = np.asarray(stamps, dtype=np.float64)  # (N,) observation stamps (s, bag clock)
        self.times = self.stamps - self.stamps[0]
        self.observed = np.asarray(observed, dtype=np.float64)  # (N, J) the synchronised joint states
        self.joint_stamps = np.asarray(joint_stamps, dtype=np.float64)  # (M,) increasing
        self.joint_positions = np.asarray(joint_positions, dtype=np.float64)  # (M, J)
        self.instruction, self.source = instruction, source
        if action_stamps is not None:
            self.action_stamps = np.asarray(action_stamps, dtype=np.float64)  # (K,) increasing
            self.action_positions = np.asarray(action_positions, dtype=np.float64)  # (K, J)

    @property
    def observed_slots(self) -> np.ndarray:
        """(N, D) float32: the observations' joint states in slot space (what the backend's state is)."""
        return state_to_slots(self.spec, self.observed)

    def joints(self, t) -> np.ndarray:
        """The recorded joint states linearly interpolated at t (held before the first and after the last)."""
        x = np.atleast_1d(np.asarray(t, dtype=np.float64)) + self.stamps[0]
        return _interpolate(self.joint_stamps, self.joint_positions, x)

    def action_slots(self, t) -> np.ndarray:
        if self.action_stamps is None:
            return self.slots(t)
        x = np.atleast_1d(np.asarray(t, dtype=np.float64)) + self.stamps[0]
        return state_to_slots(self.spec, _interpolate(self.action_stamps, self.action_positions, x))


# -- decoding settings -----------------------------------------------------------------------------
@dataclass
class DecodeSettings:
    """How bags become observations (the perception node's parameters; None = kairos-eval's default)."""

    camera_topics: list | None = None  # None: every image topic of the bag, head first
    camera_names: list | None = None  # None: from the topics
    layout: str | None = None  # None: single / side_by_side / robotwin by camera count
    tile_width: int = 64
    tile_height: int = 48
    slop: float = 0.05
    rate: float = 10.0
    queue_size: int = 10
    joint_topic: str = "/joint_states"
    embodiment: str | None = None  # None: detected from the joint names
    instruction: str = ""  # used when the bag records none
    max_image_pixels: int = 0  # 0: core.image's default
    camera_crops: list | None = None  # None / []: whole frames; else one core.image crop text per camera
    action_topic: str = ""  # "": chunks learnt from joint_topic; else a JointState topic of commanded positions
    profile: str = ""  # where the settings came from (not part of the cache key)

    def key_fields(self) -> dict:
        d = asdict(self)
        d.pop("profile")
        for optional in ("camera_crops", "action_topic"):  # unset: the keys of caches made before they existed
            if not d[optional]:
                d.pop(optional)
        return d


def settings_from_profile(path: str, **overrides) -> DecodeSettings:
    """DecodeSettings from a bringup profile's perception and world_model sections; keyword
    overrides (not None) win. Raises DatasetError naming the file."""
    try:
        perception = load_ros_params_yaml(path, "perception")
        world = load_ros_params_yaml(path, "world_model")
    except ParameterError as exc:
        raise DatasetError(f"profile '{path}': {exc}") from exc
    s = DecodeSettings(profile=str(path))
    pick = {"camera_topics": "camera_topics", "camera_names": "camera_names", "layout": "layout",
            "tile_width": "tile_width", "tile_height": "tile_height", "slop": "slop", "rate_hz": "rate",
            "queue_size": "queue_size", "joint_states_topic": "joint_topic", "max_image_pixels": "max_image_pixels",
            "camera_crops": "camera_crops"}
    for key, attr in pick.items():
        if key in perception and perception[key] not in (None, [], ""):
            value = perception[key]
            setattr(s, attr, list(value) if isinstance(value, (list, tuple)) else value)
    if world.get("instruction"):
        s.instruction = str(world["instruction"])
    return replace(s, **{k: v for k, v in overrides.items() if v is not None})


# -- finding bags ------------------------------------------------------------------------------------
def find_bags(paths) -> list[Path]:
    """Each path is a bag folder (with metadata.yaml), a bag's .mcap/.db3 file, or a folder whose
    sub-folders are bags (sorted by name). DatasetError for a path that holds none."""
    bags: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DatasetError(f"bag '{p}' does not exist")
        if p.is_file():
            p = p.parent
        if (p / "metadata.yaml").is_file():
            bags.append(p)
            continue
        inner = sorted(d for d in p.iterdir() if d.is_dir() and (d / "metadata.yaml").is_file())
        if not inner:
            raise DatasetError(f"'{p}' is neither a rosbag2 folder (no metadata.yaml) nor a folder of bag folders")
        bags += inner
    seen, out = set(), []
    for b in bags:
        r = b.resolve()
        if r not in seen:
            seen.add(r)
            out.append(b)
    return out


def bag_fingerprint(bag: Path) -> dict:
    """What identifies a bag's content cheaply: metadata.yaml's hash, each storage file's name,
    size and a hash of its first and last 64 KiB (a truncated or rewritten file changes it)."""
    h = hashlib.sha256((bag / "metadata.yaml").read_bytes()).hexdigest()
    files = []
    for f in sorted(bag.iterdir()):
        if f.suffix not in (".mcap", ".db3", ".zstd") or not f.is_file():
            continue
        size = f.stat().st_size
        d = hashlib.sha256()
        with open(f, "rb") as fh:
            d.update(fh.read(65536))
            if size > 65536:
                fh.seek(max(65536, size - 65536))
                d.update(fh.read())
        files.append([f.name, size, d.hexdigest()])
    return {"metadata": h, "files": files}


def cache_key(bag: Path, settings: DecodeSettings, embodiment: str) -> str:
    text = json.dumps({"format": FORMAT, "bag": bag_fingerprint(bag), "settings": settings.key_fields(),
                       "embodiment": embodiment}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def default_cache_dir() -> Path:
    env = os.environ.get("KAIROS_CACHE_DIR")
    if env:
        return Path(env) / "datasets"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kairos_ros" / "datasets"


# -- decoding ----------------------------------------------------------------------------------------
@dataclass
class DecodedBag:
    """A bag's episodes and facts: meta is what the cache file stores next to the arrays."""

    path: Path
    episodes: list
    meta: dict = field(default_factory=dict)
    cached: bool = False


def _spec(name: str, bag: Path):
    try:
        return load_embodiment(name)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise DatasetError(f"bag '{bag}': embodiment '{name}': {exc}") from exc


def _replay(reader, topics, pipeline, rate: float, counts: dict, sizes: dict) -> list[list]:
    """Observations of the bag as the perception node would publish them (lib.replay, the loop
    kairos-eval uses), split where their stamps go backwards; each camera's decoded sizes go into
    `sizes` (mismatches across bags are refused before training)."""
    segments: list[list] = [[]]
    max_pixels = pipeline.config.max_image_pixels

    def drop(key: str) -> None:
        counts["dropped_inputs"][key] = counts["dropped_inputs"].get(key, 0) + 1

    def on_observation(obs) -> None:
        obs.composed = compose(pipeline.config.layout, obs.camera_names, obs.images)
        seg = segments[-1]
        if seg and obs.stamp == seg[-1].stamp:  # ObservationHistory: a re-sent duplicate replaces
            seg[-1] = obs
            return
        if seg and obs.stamp < seg[-1].stamp:
            segments.append([])
        segments[-1].append(obs)

    def on_reset() -> None:
        counts["resets"] += 1
        if segments[-1]:
            segments.append([])

    def on_message() -> None:
        counts["messages"] += 1

    def add_image(pipe, name: str, stamp: float, msgtype: str, msg) -> None:
        # as PerceptionPipeline.add_compressed_image / add_raw_image, keeping the camera's size
        if msgtype == bagio.COMPRESSED:
            rgb = decode_compressed(msg.format, bytes(msg.data), max_pixels)
        else:
            rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data, max_pixels)
        sizes.setdefault(name, set()).add((int(rgb.shape[1]), int(rgb.shape[0])))
        pipe.add_rgb(name, stamp, rgb)

    replay(reader, topics, pipeline, rate, ReplayHooks(
        on_observation=on_observation, on_reset=on_reset, on_message=on_message,
        on_instruction=counts["instructions"].append, on_drop=drop, add_image=add_image))
    return [s for s in segments if s]


def decode_bag(path, settings: DecodeSettings, embodiment: str | None = None) -> DecodedBag:
    """Decode one bag (no cache). DatasetError naming the bag for anything wrong with it."""
    bag = Path(path)
    t0 = time.perf_counter()
    try:
        reader = bagio.open_reader(bag)
    except FileNotFoundError as exc:
        raise DatasetError(str(exc)) from exc
    except Exception as exc:  # rosbags raises several types for unreadable bags
        raise DatasetError(f"bag '{bag}' cannot be read (corrupt or truncated?): {type(exc).__name__}: {exc}") from exc
    try:
        types = bagio.topic_table(reader)
        cams = match_recorded_topics(types, list(settings.camera_topics)) if settings.camera_topics else None
        topics = select_topics(reader, cams, settings.camera_names, settings.joint_topic)
        if types[topics.joint_topic]["count"] == 0:
            raise EvalError(f"joint topic '{topics.joint_topic}' has no messages")
        recorded_joints = first_joint_names(reader, topics.joint_topic)
        name = embodiment or settings.embodiment or detect_embodiment(recorded_joints)
        spec = _spec(name, bag)
        layout = settings.layout or default_layout(len(topics.camera_topics))
        try:
            pipeline = PerceptionPipeline(PerceptionConfig(
                camera_names=list(topics.camera_names), joint_names=list(spec.joint_names),
                ignore_joints=list(getattr(spec, "ignore_joints", [])), layout=layout,
                tile_width=settings.tile_width, tile_height=settings.tile_height, slop=settings.slop,
                queue_size=settings.queue_size,
                max_image_pixels=settings.max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS,
                camera_crops=list(settings.camera_crops or [])))
        except (ValueError, KeyError) as exc:
            raise EvalError(f"perception set-up failed (layout '{layout}', cameras {topics.camera_names}): "
                            f"{exc}") from exc
        series = load_joint_series(reader, topics.joint_topic, list(spec.joint_names),
                                   list(getattr(spec, "ignore_joints", [])), spec.name)
        commands = None
        if settings.action_topic:
            if settings.action_topic not in types:
                raise EvalError(f"action topic '{settings.action_topic}' is not in the bag (topics: {sorted(types)})")
            if types[settings.action_topic]["type"] != bagio.JOINT_STATE or types[settings.action_topic]["count"] == 0:
                raise EvalError(f"action topic '{settings.action_topic}' must hold sensor_msgs/msg/JointState "
                                f"messages (it has {types[settings.action_topic]['count']} of "
                                f"{types[settings.action_topic]['type']})")
            commands = load_joint_series(reader, settings.action_topic, list(spec.joint_names),
                                         list(getattr(spec, "ignore_joints", [])), spec.name)
        period = camera_period(reader, topics.camera_topics[0])
        counts = {"messages": 0, "resets": 0, "dropped_inputs": {}, "instructions": []}
        sizes: dict = {}
        segments = _replay(reader, topics, pipeline, settings.rate, counts, sizes)
        replayed = topics.camera_topics + [topics.joint_topic] + [t for t in [topics.instruction_topic] if t]
        expected = sum(c.msgcount for c in connections(reader, replayed))
        if counts["messages"] < expected:
            raise EvalError(f"truncated: {counts['messages']} of the {expected} messages its metadata lists could "
                            "be read")
        info = bagio.bag_info(bag, reader)
    except DatasetError:
        raise
    except EvalError as exc:
        raise DatasetError(f"bag '{bag}': {exc}") from exc
    except Exception as exc:  # a storage file that breaks off mid-way, a bad chunk, an undecodable message
        raise DatasetError(f"bag '{bag}' is corrupt or truncated: {type(exc).__name__}: {exc}") from exc
    finally:
        reader.close()
    if not segments:
        raise DatasetError(f"bag '{bag}': no synchronised observation (cameras {topics.camera_names} and "
                           f"'{topics.joint_topic}' never within slop {settings.slop} s; dropped inputs: "
                           f"{counts['dropped_inputs']})")
    instruction = counts["instructions"][-1] if counts["instructions"] else settings.instruction
    meta = {"format": FORMAT, "bag": str(bag), "name": bag.name, "storage": info["storage"],
            "embodiment": spec.name, "joint_names": list(spec.joint_names), "recorded_joint_names": recorded_joints,
            "slot_names": list(spec.slot_names), "camera_topics": list(topics.camera_topics),
            "camera_names": list(topics.camera_names), "camera_sizes": {k: sorted(v) for k, v in sizes.items()},
            "layout": layout, "tile_width": settings.tile_width, "tile_height": settings.tile_height,
            "camera_period": period, "instruction": instruction,
            "instruction_topic": topics.instruction_topic, "bag_instruction": bool(counts["instructions"]),
            "resets": counts["resets"], "dropped_inputs": counts["dropped_inputs"],
            "messages": counts["messages"], "duration": info["duration"], "settings": settings.key_fields(),
            "decode_seconds": round(time.perf_counter() - t0, 3)}
    arrays = []
    for seg in segments:
        arrays.append({"frames": np.stack([o.composed for o in seg]),
                       "stamps": np.array([o.stamp for o in seg], dtype=np.float64),
                       "observed": np.stack([np.asarray(o.joint_state.positions, dtype=np.float64) for o in seg])})
    meta["segments"] = len(arrays)
    meta["action_topic"] = settings.action_topic
    actions = (commands.stamps, commands.positions) if commands is not None else None
    return _episodes(bag, spec, meta, arrays, series.stamps, series.positions, actions)


def _series(stamps, positions, first: float, last: float, fallback=None):
    """The stretch of a (stamps, positions) series that belongs to a segment from `first` to
    `last` (a looping bag's stamps repeat), sorted, duplicate stamps dropped."""
    stamps, positions = np.asarray(stamps, dtype=np.float64), np.asarray(positions, dtype=np.float64)
    inside = (stamps >= first - 1.0) & (stamps <= last + 10.0)
    js, jp = stamps[inside], positions[inside]
    if js.size == 0 and fallback is not None:
        js, jp = fallback
    order = np.argsort(js, kind="stable")
    js, jp = js[order], jp[order]
    keep = np.concatenate([[True], np.diff(js) > 0])
    return js[keep], jp[keep]


def _episodes(bag: Path, spec, meta: dict, arrays: list[dict], joint_stamps, joint_positions,
              actions=None) -> DecodedBag:
    episodes = []
    for i, a in enumerate(arrays):
        stamps = a["stamps"]
        rate = 1.0 / float(np.median(np.diff(stamps))) if len(stamps) > 1 and np.any(np.diff(stamps) > 0) \
            else 1.0 / meta["camera_period"]
        cfg = EpisodeConfig(tuple(meta["camera_names"]), meta["layout"], meta["tile_width"], meta["tile_height"],
                            camera_width=0, camera_height=0, camera_rate=rate,
                            duration=float(stamps[-1] - stamps[0]))
        # the segment's own stretch of the joint series (a looping bag's stamps repeat)
        js, jp = _series(joint_stamps, joint_positions, stamps[0], stamps[-1], (stamps, a["observed"]))
        acts, actp = (None, None)
        if actions is not None:
            acts, actp = _series(actions[0], actions[1], stamps[0], stamps[-1])
            if acts.size == 0:
                raise DatasetError(f"bag '{bag}': no message of action topic '{meta.get('action_topic')}' "
                                   f"between {stamps[0]:.3f} and {stamps[-1]:.3f} s (segment {i})")
        source = meta["bag"] + (f"#{i}" if len(arrays) > 1 else "")
        episodes.append(RecordedEpisode(spec, cfg, a["frames"], stamps, a["observed"], js, jp,
                                        meta["instruction"], source, acts, actp))
    return DecodedBag(bag, episodes, meta)


def _save(file: Path, decoded: DecodedBag) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": np.array(json.dumps(decoded.meta))}
    for i, ep in enumerate(decoded.episodes):
        data[f"frames_{i}"] = ep.frames
        data[f"stamps_{i}"] = ep.stamps
        data[f"observed_{i}"] = ep.observed
        data[f"joint_stamps_{i}"] = ep.joint_stamps
        data[f"joint_positions_{i}"] = ep.joint_positions
        if ep.action_stamps is not None:
            data[f"action_stamps_{i}"] = ep.action_stamps
            data[f"action_positions_{i}"] = ep.action_positions
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **data)
    os.replace(tmp, file)


def _load(file: Path, bag: Path) -> DecodedBag | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT:
                return None
            spec = _spec(meta["embodiment"], bag)
            eps = []
            for i in range(meta["segments"]):
                actions = ((z[f"action_stamps_{i}"], z[f"action_positions_{i}"]) if meta.get("action_topic")
                           else None)
                d = _episodes(bag, spec, {**meta, "bag": str(bag)},
                              [{"frames": z[f"frames_{i}"], "stamps": z[f"stamps_{i}"],
                                "observed": z[f"observed_{i}"]}], z[f"joint_stamps_{i}"], z[f"joint_positions_{i}"],
                              actions)
                ep = d.episodes[0]
                if meta["segments"] > 1:
                    ep.source = f"{bag}#{i}"
                eps.append(ep)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # an unreadable cache file is decoded again
    meta["bag"] = str(bag)
    return DecodedBag(bag, eps, meta, cached=True)


def bag_embodiment(path, joint_topic: str = "/joint_states") -> str:
    """The embodiment a bag's first joint state names ("" when the bag has no such topic: decode_bag
    then names the problem). DatasetError for an unreadable bag or unknown joints."""
    bag = Path(path)
    try:
        reader = bagio.open_reader(bag)
    except FileNotFoundError as exc:
        raise DatasetError(str(exc)) from exc
    except Exception as exc:
        raise DatasetError(f"bag '{bag}' cannot be read (corrupt or truncated?): {type(exc).__name__}: {exc}") from exc
    try:
        types = bagio.topic_table(reader)
        if types.get(joint_topic, {}).get("type") != bagio.JOINT_STATE or not types[joint_topic]["count"]:
            return ""
        return detect_embodiment(first_joint_names(reader, joint_topic))
    except EvalError as exc:
        raise DatasetError(f"bag '{bag}': {exc}") from exc
    except Exception as exc:
        raise DatasetError(f"bag '{bag}' is corrupt or truncated: {type(exc).__name__}: {exc}") from exc
    finally:
        reader.close()


def load_bag(path, settings: DecodeSettings, cache_dir=None, embodiment: str | None = None) -> DecodedBag:
    """decode_bag through the cache (cache_dir None: no cache)."""
    bag = Path(path)
    if cache_dir is None:
        return decode_bag(bag, settings, embodiment)
    name = embodiment or settings.embodiment or bag_embodiment(bag, settings.joint_topic)
    if not name:
        return decode_bag(bag, settings, embodiment)  # it names the problem
    file = Path(cache_dir) / f"{bag.name}-{cache_key(bag, settings, name)[:20]}.npz"
    if file.is_file():
        found = _load(file, bag)
        if found is not None:
            return found
    decoded = decode_bag(bag, settings, name)
    _save(file, decoded)
    return decoded


# -- a set of bags ---------------------------------------------------------------------------------
def required_frames(history: int, horizon: int, step_period: float, rate: float, future_frames: int = 0,
                    state_velocity: int = 0) -> int:
    """Frames an episode needs for one training window (train/data.sample_batch's rule)."""
    reach = max(future_frames, int(np.ceil(horizon * step_period * rate)))
    return max(history, state_velocity) + reach


def check_bags(decoded: list[DecodedBag]) -> None:
    """The bags must agree: embodiment and recorded joint names, cameras, composed size, camera
    sizes. DatasetError naming the bag that differs from the first and how."""
    if not decoded:
        raise DatasetError("no bags")
    ref = decoded[0]
    r = ref.meta
    problems = []
    for d in decoded[1:]:
        m = d.meta
        if m["embodiment"] != r["embodiment"]:
            problems.append(f"bag '{d.path}': embodiment '{m['embodiment']}' (joints {m['recorded_joint_names']}) "
                            f"differs from bag '{ref.path}': '{r['embodiment']}' (joints {r['recorded_joint_names']})")
            continue
        if set(m["recorded_joint_names"]) != set(r["recorded_joint_names"]):
            missing = sorted(set(r["recorded_joint_names"]) - set(m["recorded_joint_names"]))
            extra = sorted(set(m["recorded_joint_names"]) - set(r["recorded_joint_names"]))
            problems.append(f"bag '{d.path}': joint names differ from bag '{ref.path}' (missing {missing}, "
                            f"extra {extra})")
        if m["camera_names"] != r["camera_names"]:
            problems.append(f"bag '{d.path}': cameras {m['camera_names']} differ from bag '{ref.path}': "
                            f"{r['camera_names']}")
            continue
        for cam in r["camera_names"]:
            a, b = r["camera_sizes"].get(cam), m["camera_sizes"].get(cam)
            if a and b and [list(x) for x in a] != [list(x) for x in b]:
                fmt = lambda s: "/".join(f"{w}x{h}" for w, h in s)  # noqa: E731
                problems.append(f"bag '{d.path}': camera '{cam}' frames are {fmt(b)} (width x height) but bag "
                                f"'{ref.path}' has {fmt(a)}")
        if d.episodes[0].frames.shape[1:] != ref.episodes[0].frames.shape[1:]:
            problems.append(f"bag '{d.path}': composed frames {d.episodes[0].frames.shape[1:3]} differ from bag "
                            f"'{ref.path}': {ref.episodes[0].frames.shape[1:3]}")
    if problems:
        raise DatasetError("; ".join(problems))


def check_lengths(episodes: list, history: int, horizon: int, step_period: float, future_frames: int = 0,
                  state_velocity: int = 0) -> None:
    """DatasetError naming every episode too short for one window of history + horizon."""
    short = []
    for ep in episodes:
        need = required_frames(history, horizon, step_period, ep.cfg.camera_rate, future_frames, state_velocity)
        if len(ep.times) < need + 1:
            short.append(f"bag '{ep.source}': episode of {len(ep.times)} observations ({ep.times[-1]:.2f} s) is "
                         f"shorter than history {max(history, state_velocity)} + horizon {horizon} x "
                         f"{step_period:g} s (needs {need + 1} observations at {ep.cfg.camera_rate:g} Hz)")
    if short:
        raise DatasetError("; ".join(short))


def load_bags(paths, settings: DecodeSettings, cache_dir=None, log=None) -> tuple[list, list[DecodedBag]]:
    """Every bag under `paths` (find_bags), decoded or loaded from the cache, checked against each
    other. Returns (episodes, decoded bags). All per-bag errors are gathered into one DatasetError."""
    bags = find_bags(paths)
    decoded, errors = [], []
    embodiment = settings.embodiment
    for bag in bags:
        t = time.perf_counter()
        try:
            d = load_bag(bag, settings, cache_dir, embodiment)
        except DatasetError as exc:
            errors.append(str(exc))
            continue
        decoded.append(d)
        if log:
            n = sum(len(e) for e in d.episodes)
            log(f"{'cached' if d.cached else 'decoded'} {bag} ({n} observations, {d.episodes[0].frames.shape[2]}x"
                f"{d.episodes[0].frames.shape[1]}, {d.meta['embodiment']}) in {time.perf_counter() - t:.2f} s")
    if errors:
        raise DatasetError("; ".join(errors))
    check_bags(decoded)
    return [e for d in decoded for e in d.episodes], decoded


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) episode indices: round(n * val_fraction) validation episodes, at least
    one when n >= 2 and val_fraction > 0, never all; drawn with the seed."""
    if n < 2 or val_fraction <= 0:
        return list(range(n)), []
    k = min(n - 1, max(1, int(round(n * val_fraction))))
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(int(i) for i in order[:k])
    return [i for i in range(n) if i not in val], val
