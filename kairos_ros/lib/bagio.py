"""rosbag2 input/output with `rosbags` (no rclpy): writer set-up, stamps, reading in log-time order.

Bag format choice (written by kairos-make-bag): rosbag2 metadata version 8, the newest that
ROS 2 Humble, Jazzy and Kilted all parse. Version 9 stores `offered_qos_profiles` as a YAML list,
which Humble's yaml-cpp decoder reads as a string and rejects ("bad conversion"); version 8 keeps
the string form and Jazzy/Kilted read it unchanged (they ignore nothing Humble needs, Humble
ignores the extra `type_description_hash`). Message definitions come from the Humble typestore;
Image, CompressedImage, JointState and String are identical in Humble, Jazzy and Kilted, so their
RIHS01 hashes agree too. MCAP chunks are zstd-compressed inside the storage (supported by the
MCAP storage plugin of all three distributions); sqlite3 stays uncompressed.
"""
from __future__ import annotations

from pathlib import Path

BAG_VERSION = 8
STORAGES = ("mcap", "sqlite3")

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"


def typestore():
    # rosbags is a pip package, not a ROS one (package.xml): only reading or writing a bag needs it, not
    # the topic-type names and stamp helpers here (bringup's live report imports this module)
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def open_writer(path: str | Path, storage: str, compress: bool = True):
    """An opened rosbags Writer (the caller adds connections, writes, and closes it)."""
    from rosbags.rosbag2 import Writer  # rosbags only where a bag is opened (see typestore)
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin

    if storage not in STORAGES:
        raise ValueError(f"storage '{storage}' is not one of {list(STORAGES)}")
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(Path(path), version=BAG_VERSION, storage_plugin=plugin)
    if compress and storage == "mcap":
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    return writer


def split_ns(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) as in builtin_interfaces/Time."""
    return int(stamp_ns // 1_000_000_000), int(stamp_ns % 1_000_000_000)


def stamp_sec(header) -> float:
    """Header stamp of a deserialised message in float seconds (as the nodes' to_sec())."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def bag_dir(path: str | Path) -> Path:
    """The bag folder for a folder, a metadata.yaml or a single .mcap/.db3 file inside one.

    Raises FileNotFoundError naming the path when nothing is there.
    """
    bag = Path(path)
    if not bag.exists():
        raise FileNotFoundError(f"bag '{path}' does not exist")
    if bag.is_file():
        bag = bag.parent
    if not (bag / "metadata.yaml").is_file():
        raise FileNotFoundError(f"bag '{path}' has no metadata.yaml (not a rosbag2 folder)")
    return bag


def open_reader(path: str | Path):
    """An opened rosbags AnyReader (MCAP or sqlite3), used as a context manager by the caller."""
    from rosbags.highlevel import AnyReader  # rosbags only where a bag is opened (see typestore)

    reader = AnyReader([bag_dir(path)], default_typestore=typestore())
    reader.open()
    return reader


def topic_table(reader) -> dict[str, dict]:
    """{topic: {"type": msgtype, "count": messages}} of an opened reader."""
    table: dict[str, dict] = {}
    for conn in reader.connections:
        entry = table.setdefault(conn.topic, {"type": conn.msgtype, "count": 0})
        entry["count"] += conn.msgcount
    return dict(sorted(table.items()))


def bag_info(path: str | Path, reader) -> dict:
    """Facts about a bag for reports: path, storage, start, duration, messages, topics."""
    folder = bag_dir(path)
    files = sorted(p.name for p in folder.iterdir() if p.suffix in (".mcap", ".db3"))
    storage = "mcap" if any(f.endswith(".mcap") for f in files) else "sqlite3"
    return {
        "path": str(folder),
        "name": folder.name,
        "storage": storage,
        "files": files,
        "start_time": reader.start_time * 1e-9,
        "duration": (reader.end_time - reader.start_time) * 1e-9,
        "message_count": int(reader.message_count),
        "topics": topic_table(reader),
    }
