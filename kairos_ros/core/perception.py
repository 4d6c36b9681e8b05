"""The perception pipeline without ROS: convert, validate, synchronise, resize, compose.

The perception node and the offline evaluator both drive this class, so a bag evaluated offline
goes through exactly the code that runs on the robot.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from kairos_ros.core.image import (DEFAULT_MAX_IMAGE_PIXELS, ImageError, check_image_size, check_raw_size,
                                   decode_compressed, image_to_rgb, make_layout, parse_crops, resize_rgb,
                                   warm_up_resize)
from kairos_ros.core.joints import JointStateError, order_joint_state
from kairos_ros.core.sync import ApproximateSync
from kairos_ros.core.types import JointStateData, ObservationData

JOINTS = "joint_states"


@dataclass
class PerceptionConfig:
    camera_names: list[str]
    joint_names: list[str]
    ignore_joints: list[str] = field(default_factory=list)
    layout: str = "side_by_side"
    tile_width: int = 160
    tile_height: int = 128
    slop: float = 0.05
    queue_size: int = 10
    # Largest accepted frame (width * height), checked before decoding: core.image
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Region of each camera frame kept before the resize (core.image.parse_crop text per camera, '' =
    # whole frame; [] = no crops): e.g. a head camera cropped to the workspace
    camera_crops: list = field(default_factory=list)


class PerceptionPipeline:
    """Feed raw frames and joint states in any order; poll() returns the newest synced observation.

    Every rejected input raises ImageError or JointStateError (a ValueError naming the problem;
    ImageTooLargeError for a frame over max_image_pixels, refused before it is decoded); the
    caller counts it and carries on. A stamp that jumps backwards on any stream (a looping bag)
    clears all queued data and makes the next poll() report `reset=True`.
    """

    def __init__(self, config: PerceptionConfig):
        if not config.camera_names:
            raise ValueError("at least one camera is required")
        if JOINTS in config.camera_names:
            raise ValueError(f"camera name '{JOINTS}' is reserved")
        if config.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels {config.max_image_pixels} must be >= 1")
        self.config = config
        self.crops = parse_crops(config.camera_crops, config.camera_names)
        self.layout = make_layout(config.layout, list(config.camera_names), config.tile_width, config.tile_height)
        self.sync = ApproximateSync(list(config.camera_names) + [JOINTS], config.slop, config.queue_size)
        self.instruction = ""
        self.resets = 0
        self._pending_reset = False
        warm_up_resize()

    # -- intake -------------------------------------------------------------------------------
    def add_raw_image(self, camera: str, stamp: float, encoding: str, height: int, width: int,
                      step: int, is_bigendian, data) -> None:
        rgb = image_to_rgb(encoding, height, width, step, is_bigendian, data, self.config.max_image_pixels)
        self.add_rgb(camera, stamp, rgb)

    def check_raw_size(self, encoding: str, height: int, width: int) -> None:
        """ImageTooLargeError for a sensor_msgs/Image over max_image_pixels, before any conversion
        (for callers that convert it themselves, e.g. with cv_bridge)."""
        check_raw_size(encoding, height, width, self.config.max_image_pixels)

    def add_compressed_image(self, camera: str, stamp: float, fmt: str, data) -> None:
        self.add_rgb(camera, stamp, decode_compressed(fmt, bytes(data), self.config.max_image_pixels))

    def add_rgb(self, camera: str, stamp: float, rgb: np.ndarray) -> None:
        """A frame already converted to RGB (e.g. by cv_bridge on a ROS install)."""
        if camera not in self.config.camera_names:
            raise KeyError(f"unknown camera '{camera}' (configured: {self.config.camera_names})")
        if not np.isfinite(stamp):
            raise ImageError(f"camera '{camera}': non-finite stamp {stamp}")
        if getattr(rgb, "ndim", 0) >= 2:
            check_image_size(rgb.shape[1], rgb.shape[0], self.config.max_image_pixels, "RGB frame")
        k = self.config.camera_names.index(camera)
        w, h = self.layout.tile_size(k)
        if self.crops[k] is not None and getattr(rgb, "ndim", 0) == 3:
            rgb = self.crops[k].apply(rgb)
        tile = resize_rgb(rgb, w, h)
        self._add(camera, stamp, tile)

    def add_joint_state(self, stamp: float, names: Iterable[str], positions, velocities=None) -> None:
        pos, vel = order_joint_state(list(names), positions, velocities, self.config.joint_names,
                                     self.config.ignore_joints)
        if not np.isfinite(stamp):
            raise JointStateError(f"non-finite joint_states stamp {stamp}")
        self._add(JOINTS, stamp, JointStateData(stamp, list(self.config.joint_names), pos, vel))

    def _add(self, stream: str, stamp: float, item) -> None:
        if self.sync.add(stream, stamp, item) == "reset":
            self.resets += 1
            self._pending_reset = True
            self.sync.add(stream, stamp, item)  # the jumping message starts the new epoch

    # -- output -------------------------------------------------------------------------------
    def take_reset(self) -> bool:
        """True once after a backwards time jump was seen (callers reset their own state)."""
        flag, self._pending_reset = self._pending_reset, False
        return flag

    def poll(self, compose: bool = True) -> ObservationData | None:
        found = self.sync.pop_latest()
        if found is None:
            return None
        names = self.config.camera_names
        images = [found[name][1] for name in names]
        joint_state = found[JOINTS][1]
        stamp = max(s for s, _ in found.values())
        composed = self.layout.compose(images) if compose else None
        return ObservationData(stamp=stamp, camera_names=list(names), images=images,
                               joint_state=joint_state, instruction=self.instruction, composed=composed,
                               image_stamps=[found[name][0] for name in names])
