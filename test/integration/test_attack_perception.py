"""Attacks on the running perception node over DDS (issue 10): decompression bombs, frames that
declare huge sizes, and stamps from the future. The real node runs in its own process; each attack
is refused and counted in /diagnostics, produces no Observation, leaves the node's peak memory
(VmHWM of the child) bounded, and normal input still produces observations afterwards."""
import io
import math
import struct
import zlib

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image as PilImage
from sensor_msgs.msg import CompressedImage, Image, JointState

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.msg import Observation
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_sec, to_time

SPEC = load_embodiment("single_arm")
RAW = "/attack/raw/image_raw"
PACKED = "/attack/packed/image_raw/compressed"
OBS = "/kairos/observation"
# Peak memory the node may gain over its own baseline while attacked. The bombs took it 1.5-2.7 GB
# higher; a refused frame costs at most the message itself (well under 1 MB here).
HWM_GROWTH_MB = 150
Y2038 = 2_147_000_000.0  # 2038-01-13: within Time.sec (int32)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, bit_depth: int) -> bytes:
    """An all-zero grey PNG written row by row (never held decoded here)."""
    row = bytes(1 + (width * bit_depth + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_with_header(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PilImage.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


@pytest.fixture(scope="module")
def graph():
    listener = Listener("attack_listener")
    listener.record(Observation, OBS)
    listener.record(DiagnosticArray, "/diagnostics")
    node = NodeProcess("kairos_ros.nodes.perception_node", "perception",
                       {"embodiment": "single_arm", "camera_topics": [RAW, PACKED], "layout": "side_by_side",
                        "tile_width": 32, "tile_height": 32, "rate_hz": 200.0, "slop": 0.02,
                        "diagnostics_period": 0.2})
    assert listener.wait_nodes(["perception"], 60), node.output()
    listener.pubs = {"raw": listener.publisher(Image, RAW), "packed": listener.publisher(CompressedImage, PACKED),
                     "js": listener.publisher(JointState, "/joint_states")}
    assert listener.wait_subscriptions({RAW: 1, PACKED: 1, "/joint_states": 1}), node.output()
    # A normal set comes through; the node's peak memory after it is the baseline.
    assert normal_set_observed(listener), "no observation from normal input:\n" + node.output()[-3000:]
    listener.baseline_mb = vm_hwm_mb(node.proc.pid)
    yield listener, node
    assert node.stop() == 0, node.output()[-3000:]
    listener.close()


def now(listener) -> float:
    return listener.node.get_clock().now().nanoseconds * 1e-9


def raw_image(stamp, h=24, w=32, encoding="rgb8", step=None, data=None, bigendian=0) -> Image:
    msg = Image(height=h, width=w, encoding=encoding, step=w * 3 if step is None else step, is_bigendian=bigendian)
    msg.data = bytes(np.full(h * w * 3, 100, np.uint8)) if data is None else data
    msg.header.stamp = to_time(stamp)
    return msg


_SMALL_PNG = io.BytesIO()
PilImage.fromarray(np.full((24, 32, 3), 60, np.uint8)).save(_SMALL_PNG, "PNG")


def packed_image(stamp, data=None, fmt="png") -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = _SMALL_PNG.getvalue() if data is None else data
    msg.header.stamp = to_time(stamp)
    return msg


def joints(stamp) -> JointState:
    msg = JointState(name=list(SPEC.joint_names), position=[float(x) for x in (SPEC.lower + SPEC.upper) / 2])
    msg.header.stamp = to_time(stamp)
    return msg


def stamps_seen(listener) -> list[float]:
    return [to_sec(o.header.stamp) for o in listener.got(OBS)]


def normal_set_observed(listener, timeout=20.0) -> float | None:
    """Send normally stamped sets (a fresh stamp each try) until one comes back as an Observation."""
    sent = []

    def attempt():
        if any(abs(s - t) < 1e-6 for s in stamps_seen(listener) for t in sent):
            return True
        t = now(listener)
        sent.append(t)
        listener.pubs["js"].publish(joints(t))
        listener.pubs["raw"].publish(raw_image(t))
        listener.pubs["packed"].publish(packed_image(t))
        return False
    return wait_for(attempt, timeout, period=0.3)


def count(listener, key) -> int:
    return int(listener.diagnostics_values("perception").get(f"count.{key}", 0))


def publish_until_counted(listener, keys, publish, timeout=30.0) -> None:
    """Publish (best-effort QoS may drop a large message) until every key's count has grown."""
    before = {k: count(listener, k) for k in keys}

    def attempt():
        if all(count(listener, k) > before[k] for k in keys):
            return True
        publish()
        return False
    assert wait_for(attempt, timeout, period=1.0), \
        f"perception did not count {keys}: {listener.diagnostics_values('perception')}"


BOMBS = {
    # camera, key, message factory(stamp)
    "png_1bit_12000": ("packed", lambda t: packed_image(t, png_bomb(12000, 12000, 1))),  # 17.5 KB, 144 MP
    "png_16bit_8000": ("packed", lambda t: packed_image(t, png_bomb(8000, 8000, 16))),  # 64 MP of 16 bits
    "jpeg_header_12000": ("packed", lambda t: packed_image(t, jpeg_with_header(12000, 12000), "jpeg")),
    "raw_huge_small_data": ("raw", lambda t: raw_image(t, h=100_000, w=100_000, step=300_000, data=bytes(12))),
    "raw_mono16_bigendian": ("raw", lambda t: raw_image(t, h=50_000, w=50_000, encoding="mono16", step=100_000,
                                                        data=bytes(100), bigendian=1)),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_oversized_frames_are_refused_and_counted(graph, name):
    listener, node = graph
    camera, factory = BOMBS[name]
    t = now(listener)
    bomb = factory(t)
    publish_until_counted(listener, [f"image_too_large.{camera}"], lambda: listener.pubs[camera].publish(bomb))
    message = listener.diagnostics_values("perception").get(f"last.image_too_large.{camera}", "")
    assert "max_image_pixels" in message and "refused before decoding" in message, message
    # The rest of the set for stamp t: with the bomb refused it can never complete.
    other = "packed" if camera == "raw" else "raw"
    listener.pubs["js"].publish(joints(t))
    listener.pubs[other].publish(raw_image(t) if other == "raw" else packed_image(t))
    # A later normal set comes through: anything from stamp t would have been published before it.
    assert normal_set_observed(listener), node.output()[-3000:]
    assert not [s for s in stamps_seen(listener) if abs(s - t) < 1e-6], f"an observation was built from {name}"
    assert node.alive()
    grown = vm_hwm_mb(node.proc.pid) - listener.baseline_mb
    assert grown < HWM_GROWTH_MB, f"{name}: perception's peak memory grew by {grown:.0f} MB"


@pytest.mark.parametrize("ahead", ["2038", "+5s"])
def test_stamps_from_the_future_are_refused_and_counted(graph, ahead):
    listener, node = graph
    t = Y2038 if ahead == "2038" else now(listener) + 5.0

    def publish():
        listener.pubs["js"].publish(joints(t))
        listener.pubs["raw"].publish(raw_image(t))
        listener.pubs["packed"].publish(packed_image(t))
    publish_until_counted(listener, ["future_stamp.raw", "future_stamp.packed", "future_stamp.joint_states"],
                          publish)
    message = listener.diagnostics_values("perception").get("last.future_stamp.joint_states", "")
    assert "ahead of the clock" in message and "future_stamp_tolerance" in message, message
    # Normally stamped input still flows (a set accepted from the future would have made it
    # look like a backwards jump), and nothing was published for the future stamp.
    assert normal_set_observed(listener), node.output()[-3000:]
    assert not [s for s in stamps_seen(listener) if s > now(listener) + 1.0 or math.isclose(s, t)], \
        "an observation was built from future stamps"
    assert node.alive()
