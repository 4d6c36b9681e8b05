"""Parameter schema of the adapter node (rclpy-free, so docs, config tests and closed-loop
evaluation import it without ROS)."""
from __future__ import annotations

from kairos_ros.core.blending import MODES
from kairos_ros.core.params import ParamSpec
from kairos_ros.core.stamps import FUTURE_TOLERANCE, FUTURE_TOLERANCE_MAX

SCHEMA = [
    ParamSpec("embodiment", "str", "", "Embodiment to drive: a folder name under urdf_adapters/ or a "
              "path to an adapter.yaml.", read_only=True, required=True),
    ParamSpec("chunk_topic", "str", "/kairos/action_chunk", "ActionChunk input.", read_only=True),
    ParamSpec("joint_states_topic", "str", "/joint_states", "Current robot state.", read_only=True),
    ParamSpec("trajectory_topic", "str", "", "JointTrajectory output (default: the adapter.yaml's "
              "controller_topic).", read_only=True),
    ParamSpec("max_chunk_age", "float", 0.5, "Refuse chunks predicted from observations older than "
              "this (s, node clock; 0 disables).", min=0.0, max=60.0, read_only=True),
    ParamSpec("max_joint_state_age", "float", 0.5, "Refuse to start a trajectory when the newest valid "
              "joint state is older than this (s; 0 disables).", min=0.0, max=60.0, read_only=True),
    ParamSpec("future_stamp_tolerance", "float", FUTURE_TOLERANCE, "Refuse chunks and joint states stamped "
              "further ahead of the node clock than this (s; sim time included): a stamp from the future is "
              "not a measurement.", min=0.0, max=FUTURE_TOLERANCE_MAX, read_only=True),
    ParamSpec("max_chunk_rows", "int", 1024, "Refuse chunks with more rows than this.", min=1, max=100000,
              read_only=True),
    ParamSpec("max_step_period", "float", 1.0, "Refuse chunks whose step_period (s) is longer than this.",
              min=0.001, max=60.0, read_only=True),
    ParamSpec("max_trajectory_duration", "float", 60.0, "Refuse chunks spanning longer than this (rows x "
              "step_period, s).", min=0.01, max=3600.0, read_only=True),
    ParamSpec("min_lead", "float", 0.0, "Drop chunk points due sooner than this after now (s).",
              min=0.0, max=5.0, read_only=True),
    ParamSpec("diagnostics_period", "float", 1.0, "Seconds between /diagnostics messages.", min=0.05,
              max=60.0, read_only=True),
    ParamSpec("preview_topic", "str", "/kairos/trajectory_preview", "Where trajectories go while the "
              "adapter is not armed (dry run).", read_only=True),
    ParamSpec("armed_on_start", "bool", False, "Send to the controller from the start (default: dry run "
              "until the ~/arm service is called).", read_only=True),
    ParamSpec("estop_topic", "str", "/kairos/estop", "std_msgs/Bool; true latches the e-stop until the "
              "~/reset_estop service.", read_only=True),
    ParamSpec("max_start_jump", "float", 0.2, "Refuse a chunk whose first point is further than this from "
              "the current joint state (per joint, rad or m).", min=1e-4, max=10.0, read_only=True),
    ParamSpec("max_step", "float", 0.3, "Refuse a chunk with a larger change between consecutive points "
              "(per joint).", min=1e-4, max=10.0, read_only=True),
    ParamSpec("velocity_tolerance", "float", 1.05, "Refuse a chunk needing more than max_velocity times "
              "this between points.", min=1.0, max=10.0, read_only=True),
    ParamSpec("acceleration_tolerance", "float", 1.05, "Refuse a chunk needing more than the joint's "
              "max_acceleration (adapter.yaml) times this at a point.", min=1.0, max=10.0, read_only=True),
    ParamSpec("watchdog_timeout", "float", 1.0, "Without a valid chunk for this long (s, node clock), send "
              "one hold-position trajectory.", min=0.05, max=60.0, read_only=True),
    ParamSpec("hold_duration", "float", 0.1, "Shortest time_from_start of a hold point (s). A hold takes "
              "longer when a joint must come back from outside its limits or stop from speed within its "
              "velocity and acceleration limits.", min=0.01, max=5.0, read_only=True),
    ParamSpec("blend_mode", "str", "rtc", "Joining successive chunks: 'rtc' ramps from the previous plan to "
              "the new one over blend_time; 'ensemble' averages overlapping plans with weights "
              "exp(-ensemble_decay * age); 'none' switches at once.", choices=list(MODES), read_only=True),
    ParamSpec("blend_time", "float", 0.2, "Length of the rtc ramp (s).", min=0.0, max=10.0, read_only=True),
    ParamSpec("ensemble_decay", "float", 2.0, "Weight decay per second of chunk age for 'ensemble'.",
              min=0.0, max=100.0, read_only=True),
]
