"""Parameter schema of the perception node (rclpy-free, so docs, config tests and closed-loop
evaluation import it without ROS)."""
from __future__ import annotations

from kairos_ros.core import stamps
from kairos_ros.core.image import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_LIMIT
from kairos_ros.core.params import ParamSpec

SCHEMA = [
    ParamSpec("embodiment", "str", "dual_arm", "Embodiment whose joints /joint_states must carry "
              "(urdf_adapters/<name>/adapter.yaml, or a path to an adapter.yaml).", read_only=True),
    ParamSpec("camera_topics", "str_array", [], "Camera topics in the layout's order. A topic ending in "
              "'/compressed' is read as sensor_msgs/CompressedImage, any other as sensor_msgs/Image.",
              read_only=True, required=True),
    ParamSpec("camera_names", "str_array", [], "Camera names, one per topic (default: derived from the "
              "topics, e.g. /cameras/head/image_raw -> head).", read_only=True),
    ParamSpec("joint_states_topic", "str", "/joint_states", "sensor_msgs/JointState input.", read_only=True),
    ParamSpec("instruction_topic", "str", "/kairos/instruction", "Latched std_msgs/String with the "
              "current instruction (published by the world model).", read_only=True),
    ParamSpec("observation_topic", "str", "/kairos/observation", "Observation output.", read_only=True),
    ParamSpec("layout", "str", "side_by_side", "How the frames compose into the model input.",
              choices=["single", "side_by_side", "robotwin"], read_only=True),
    ParamSpec("tile_width", "int", 160, "Width of one camera tile in the layout (robotwin: wrist "
              "tile; the head is twice as large). Composed sizes must be multiples of 16.",
              min=16, max=4096, read_only=True),
    ParamSpec("tile_height", "int", 128, "Height of one camera tile in the layout.", min=16, max=4096,
              read_only=True),
    ParamSpec("camera_crops", "str_array", [], "Region of each camera's frame kept before it is resized "
              "into its tile, one entry per camera in camera_topics' order: 'left top right bottom' as "
              "fractions of the frame's width and height (so it holds for any camera resolution), '' for "
              "the whole frame. [] (default): no crops. E.g. a head camera cropped to the workspace gives "
              "small objects more pixels; a model must be used with the crops it was trained with.",
              read_only=True),
    ParamSpec("slop", "float", 0.05, "Largest spread of stamps (s) within one synchronised set.",
              min=0.0005, max=2.0, read_only=True),
    ParamSpec("queue_size", "int", 10, "Messages kept per input for synchronisation.", min=1, max=1000,
              read_only=True),
    ParamSpec("rate_hz", "float", 10.0, "Highest observation publish rate. A set is published as soon "
              "as it is complete, at most this often (node clock).", min=0.1, max=1000.0, read_only=True),
    ParamSpec("frame_id", "str", "base_link", "frame_id of published observations.", read_only=True),
    ParamSpec("use_cv_bridge", "bool", True, "Convert sensor_msgs/Image with cv_bridge when it is "
              "importable (a ROS install); the built-in converter with the same semantics otherwise.",
              read_only=True),
    ParamSpec("diagnostics_period", "float", 1.0, "Seconds between /diagnostics messages.", min=0.05,
              max=60.0, read_only=True),
    ParamSpec("resize_threads", "int", 1, "torch threads for resizing frames. One keeps this node from "
              "taking cores from inference: a second thread gains little on camera-sized frames and its "
              "OpenMP worker spins after every resize. 0 leaves torch's default (one per core).",
              min=0, max=256, read_only=True),
    ParamSpec("max_image_pixels", "int", DEFAULT_MAX_IMAGE_PIXELS, "Largest camera frame accepted "
              "(width * height, any encoding). Checked from the sensor_msgs/Image fields or the "
              "JPEG/PNG header before anything is decoded, so a small compressed file declaring a huge "
              "image (a decompression bomb) is refused without allocating it; refusals are counted as "
              "image_too_large.<camera>. The default, 4096 * 3072 (12.6 MP, 38 MB as RGB), takes 4K "
              "UHD/DCI and 12 MP frames.", min=256, max=MAX_IMAGE_PIXELS_LIMIT, read_only=True),
    ParamSpec("future_stamp_tolerance", "float", stamps.FUTURE_TOLERANCE, "Camera frames and joint "
              "states stamped further ahead of this node's clock (sim time included) than this many "
              "seconds are refused and counted as future_stamp.<camera> / future_stamp.joint_states: "
              "a stamp from the future is not a measurement (clock skew between synchronised hosts "
              "stays well below the default).", min=0.0, max=stamps.FUTURE_TOLERANCE_MAX,
              read_only=True),
]
