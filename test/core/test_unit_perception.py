"""Unit tests for kairos_ros.core.perception.PerceptionPipeline, end to end on synthetic frames."""
import io
import math

import numpy as np
import pytest
from PIL import Image

from kairos_ros.core.image import ImageError
from kairos_ros.core.joints import JointStateError
from kairos_ros.core.perception import JOINTS, PerceptionConfig, PerceptionPipeline
from kairos_ros.core.sync import OutOfOrderError

JOINT_NAMES = ["j1", "j2", "j3"]
CAMS = ["head", "left", "right"]


def pipeline(**kw):
    cfg = dict(camera_names=list(CAMS), joint_names=list(JOINT_NAMES), ignore_joints=["mimic"], layout="robotwin",
               tile_width=32, tile_height=16, slop=0.02, queue_size=5)
    cfg.update(kw)
    return PerceptionPipeline(PerceptionConfig(**cfg))


def frame(value, h=40, w=60):
    return np.full((h, w, 3), value, np.uint8)


def feed_set(p, t, values=(10, 20, 30), joints_dt=0.005, q=(1.0, 2.0, 3.0)):
    # every camera in a different wire format, all as the same colours
    head = frame(values[0])
    p.add_raw_image("head", t, "bgr8", 40, 60, 60 * 3 + 4, 0,
                    np.pad(head[:, :, ::-1].reshape(40, 180), ((0, 0), (0, 4))).tobytes())
    buf = io.BytesIO()
    Image.fromarray(frame(values[1], 24, 36)).save(buf, format="PNG")
    p.add_compressed_image("left", t + 0.002, "rgb8; png compressed rgb8", bytearray(buf.getvalue()))
    p.add_rgb("right", t - 0.003, frame(values[2], 16, 32))
    p.add_joint_state(t + joints_dt, ["j3", "mimic", "j1", "j2"], [q[2], 0.0, q[0], q[1]], [0.3, 0.0, 0.1, 0.2])


def test_end_to_end_observation():
    p = pipeline()
    p.instruction = "pick the cube"
    assert p.poll() is None
    feed_set(p, 5.0)
    o = p.poll()
    assert o is not None
    assert o.stamp == pytest.approx(5.005)  # the newest stamp of the set
    assert o.image_stamps == [5.0, pytest.approx(5.002), pytest.approx(4.997)]
    assert o.camera_names == CAMS and o.instruction == "pick the cube"
    # per-camera tiles resized to the layout, composed 2w x 3h
    assert [im.shape for im in o.images] == [(32, 64, 3), (16, 32, 3), (16, 32, 3)]
    assert o.composed.shape == (48, 64, 3) and o.composed.dtype == np.uint8
    assert np.all(o.composed[:32] == 10) and np.all(o.composed[32:, :32] == 20) and np.all(o.composed[32:, 32:] == 30)
    # joint state in configured order
    assert o.joint_state.names == JOINT_NAMES and o.joint_state.stamp == pytest.approx(5.005)
    np.testing.assert_array_equal(o.joint_state.positions, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(o.joint_state.velocities, [0.1, 0.2, 0.3])
    assert p.poll() is None  # each set once
    assert p.take_reset() is False


def test_sync_picks_the_newest_set_and_respects_slop():
    p = pipeline()
    feed_set(p, 1.0, values=(1, 2, 3))
    feed_set(p, 1.1, values=(4, 5, 6))
    o = p.poll()
    assert o.stamp == pytest.approx(1.105) and o.images[0][0, 0, 0] == 4
    assert p.poll() is None
    # a joint state 50 ms away from the frames is outside the 20 ms slop: no observation
    feed_set(p, 2.0, joints_dt=0.05)
    assert p.poll() is None
    for cam, value in zip(CAMS, (7, 8, 9)):
        p.add_rgb(cam, 2.045, frame(value))  # frames that do match the joint state
    o = p.poll()
    assert o.stamp == pytest.approx(2.05) and o.image_stamps == [2.045] * 3 and o.images[1][0, 0, 0] == 8


def test_poll_without_compose():
    p = pipeline(layout="side_by_side", tile_width=16, tile_height=16)
    feed_set(p, 1.0)
    o = p.poll(compose=False)
    assert o.composed is None and [im.shape for im in o.images] == [(16, 16, 3)] * 3


def test_backwards_jump_resets_and_flags_once():
    p = pipeline()
    feed_set(p, 100.0)
    assert p.poll() is not None
    feed_set(p, 100.5)  # queued, not polled
    p.add_rgb("head", 3.0, frame(99))  # a looping bag: 97 s back
    assert p.resets == 1
    assert p.take_reset() is True and p.take_reset() is False
    # the jumping frame started the new epoch; the queued 100.5 set is gone
    p.add_rgb("left", 3.0, frame(98))
    p.add_rgb("right", 3.0, frame(97))
    p.add_joint_state(3.0, JOINT_NAMES, [0.0, 0.0, 0.0])
    o = p.poll()
    assert o.stamp == 3.0 and o.images[0][0, 0, 0] == 99 and o.images[2][0, 0, 0] == 97


def test_joint_state_jump_also_resets():
    p = pipeline()
    feed_set(p, 50.0)
    p.add_joint_state(10.0, JOINT_NAMES, [0.0] * 3)
    assert p.take_reset() is True and p.resets == 1


def test_rejections():
    p = pipeline()
    with pytest.raises(KeyError, match="unknown camera 'rear'"):
        p.add_rgb("rear", 2.0, frame(0))
    with pytest.raises(ImageError, match="camera 'head': non-finite stamp nan"):
        p.add_rgb("head", math.nan, frame(0))
    with pytest.raises(ImageError, match="unsupported encoding '8UC3'"):
        p.add_raw_image("left", 2.0, "8UC3", 2, 2, 6, 0, bytes(12))
    with pytest.raises(ImageError, match="data length"):
        p.add_raw_image("left", 2.0, "rgb8", 2, 2, 6, 0, bytes(11))
    with pytest.raises(ImageError, match="cannot decode"):
        p.add_compressed_image("left", 2.0, "jpeg", b"\xff\xd8garbage")
    with pytest.raises(JointStateError, match=r"missing configured joints \['j3'\]"):
        p.add_joint_state(2.0, ["j1", "j2"], [0.0, 0.0])
    with pytest.raises(JointStateError, match=r"unknown joints \['elbow'\]"):
        p.add_joint_state(2.0, JOINT_NAMES + ["elbow"], [0.0] * 4)
    with pytest.raises(JointStateError, match=r"non-finite positions for \['j2'\]"):
        p.add_joint_state(2.0, JOINT_NAMES, [0.0, math.inf, 0.0])
    with pytest.raises(JointStateError, match="non-finite joint_states stamp inf"):
        p.add_joint_state(math.inf, JOINT_NAMES, [0.0] * 3)
    p.add_rgb("head", 2.0, frame(1))
    with pytest.raises(OutOfOrderError):
        p.add_rgb("head", 1.99, frame(0))
    p.add_rgb("right", 2.0, frame(3))
    assert p.poll() is None  # no rejected left frame or joint state was queued
    p.add_rgb("left", 2.0, frame(2))
    assert p.poll() is None
    p.add_joint_state(2.0, JOINT_NAMES, [0.0] * 3)
    o = p.poll()
    assert o.stamp == 2.0 and [im[0, 0, 0] for im in o.images] == [1, 2, 3]
    assert p.resets == 0 and p.take_reset() is False


def test_config_errors():
    with pytest.raises(ValueError, match="at least one camera"):
        pipeline(camera_names=[])
    with pytest.raises(ValueError, match=f"camera name '{JOINTS}' is reserved"):
        pipeline(camera_names=["head", JOINTS])
    with pytest.raises(ValueError, match="'robotwin' takes 3 cameras"):
        pipeline(camera_names=["head"])
    with pytest.raises(ValueError, match="multiples of 16"):
        pipeline(tile_width=20)


# -- camera crops (a region of each frame kept before the resize) ----------------------------------------
def test_crop_parsing_names_the_bad_value():
    from kairos_ros.core.image import Crop, parse_crop, parse_crops
    assert parse_crop("") is None and parse_crop(" none ") is None
    assert parse_crop("0.25, 0.5 0.75 1") == Crop(0.25, 0.5, 0.75, 1.0)
    for bad, words in [("0.1 0.2 0.3", "4 fractions"), ("a b c d", "not numbers"), ("0.5 0 0.4 1", "left < right"),
                       ("0 0 1 1.5", r"fraction in \[0, 1\]"), ("0 0 nan 1", r"fraction in \[0, 1\]"),
                       ("0 0.5 1 0.505", "at least")]:
        with pytest.raises(ValueError, match=words) as info:
            parse_crop(bad)
        assert bad in str(info.value)
    with pytest.raises(ValueError, match="2 entries but there are 3 cameras"):
        parse_crops(["", ""], CAMS)
    assert parse_crops([], CAMS) == [None, None, None]


def test_crop_pixels_are_outward_rounded_and_never_empty():
    from kairos_ros.core.image import Crop
    assert Crop(0.25, 0.5, 0.75, 1.0).pixels(320, 240) == (80, 120, 240, 240)
    assert Crop(0.101, 0.0, 0.199, 1.0).pixels(10, 4) == (1, 0, 2, 4)
    assert Crop(0.99, 0.99, 1.0, 1.0).pixels(5, 5) == (4, 4, 5, 5)  # the last pixel, not an empty slice


def test_pipeline_crops_each_camera_before_resizing():
    # the head frame: a white square in its top-left quarter on black; cropped to that quarter
    # it fills the whole tile, uncropped it fills a quarter of it
    head = np.zeros((40, 60, 3), np.uint8)
    head[:20, :30] = 255
    tiles = {}
    for crops in ([], ["0 0 0.5 0.5", "", ""]):
        p = pipeline(camera_crops=crops)
        p.add_rgb("head", 1.0, head)
        p.add_rgb("left", 1.0, frame(20))
        p.add_rgb("right", 1.0, frame(30))
        p.add_joint_state(1.0, ["j1", "j2", "j3", "mimic"], [0, 0, 0, 0])
        obs = p.poll()
        tiles[bool(crops)] = obs.images
    assert tiles[True][0].min() == 255  # all white
    assert 0.2 < (tiles[False][0] > 128).mean() < 0.3
    assert np.array_equal(tiles[True][1], tiles[False][1])  # '' leaves a camera whole


def test_pipeline_refuses_bad_crops_at_start():
    with pytest.raises(ValueError, match="camera_crops has 1 entries"):
        pipeline(camera_crops=["0 0 1 1"])
    with pytest.raises(ValueError, match="crop '0 0 2 1'"):
        pipeline(camera_crops=["0 0 2 1", "", ""])
