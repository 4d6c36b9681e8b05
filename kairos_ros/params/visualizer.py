"""Parameter schema of the visualizer node (rclpy-free, so the parameter docs and tests import it
without ROS)."""
from __future__ import annotations

from kairos_ros.core.params import ParamSpec
from kairos_ros.core.visualization import GHOST_JOINT_STATES, GHOST_MODES

SCHEMA = [
    ParamSpec("embodiment", "str", "", "Embodiment whose predictions are drawn: a folder name under "
              "urdf_adapters/ or a path to an adapter.yaml.", read_only=True, required=True),
    ParamSpec("urdf_path", "str", "", "URDF for the forward kinematics (default: the embodiment's).",
              read_only=True),
    ParamSpec("base_link", "str", "", "Frame of the trails (default: the embodiment's base link, else the "
              "URDF's root link).", read_only=True),
    ParamSpec("end_effectors", "str_array", [], "Links to draw trails for (default: the embodiment's end "
              "effectors).", read_only=True),
    ParamSpec("future_topic", "str", "/kairos/predicted_future", "PredictedFuture input.", read_only=True),
    ParamSpec("joint_states_topic", "str", "/joint_states", "Robot state (fills the URDF joints a chunk "
              "does not drive).", read_only=True),
    ParamSpec("trajectory_topic", "str", "/kairos/trajectory_preview", "JointTrajectory drawn as the "
              "'preview' trail (the adapter's dry-run output; point it at the controller topic when armed).",
              read_only=True),
    ParamSpec("strip_topic", "str", "/kairos/viz/future_strip", "The predicted frames side by side (rgb8).",
              read_only=True),
    ParamSpec("frame_topic_prefix", "str", "/kairos/viz/future_frame_", "Predicted frame i goes to "
              "<prefix><i> (rgb8).", read_only=True),
    ParamSpec("frame_topics", "int", 4, "How many per-frame topics (frames beyond are only in the strip).",
              min=0, max=32, read_only=True),
    ParamSpec("strip_gap", "int", 2, "Black columns between frames in the strip (px).", min=0, max=64,
              read_only=True),
    ParamSpec("trails_topic", "str", "/kairos/viz/trails", "MarkerArray: end-effector trails of the current "
              "and previous chunks.", read_only=True),
    ParamSpec("preview_trails_topic", "str", "/kairos/viz/trajectory_preview", "MarkerArray: end-effector "
              "trails of trajectory_topic.", read_only=True),
    ParamSpec("trail_width", "float", 0.005, "Line width of the trails (m).", min=1e-4, max=0.1, read_only=True),
    ParamSpec("ghost_topic", "str", GHOST_JOINT_STATES, "JointState of the ghost robot (for a "
              "robot_state_publisher with frame_prefix ghost/).", read_only=True),
    ParamSpec("ghost_mode", "str", "play", "'play': the chunk at its own time base from its arrival, then "
              "its final pose held; 'loop': replayed until the next chunk; 'final': its last row.",
              choices=list(GHOST_MODES), read_only=True),
    ParamSpec("ghost_rate_hz", "float", 30.0, "Ghost JointState rate.", min=1.0, max=500.0, read_only=True),
    ParamSpec("stale_after", "float", 2.0, "Without a valid prediction for this long (s), delete the trails "
              "and stop the ghost (0: never).", min=0.0, max=3600.0, read_only=True),
    ParamSpec("diagnostics_period", "float", 1.0, "Seconds between /diagnostics messages.", min=0.05,
              max=60.0, read_only=True),
]
