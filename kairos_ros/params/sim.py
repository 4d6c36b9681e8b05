"""Parameter schema of the simulated robot driver, sim_node (rclpy-free, so the parameter docs and
bringup import it without ROS)."""
from __future__ import annotations

from kairos_ros.core.params import ParamSpec

SCHEMA = [
    ParamSpec("task", "str", "", "Simulated task to drive, by registry name (kairos_ros.lib.sim.registry: "
              "aloha_transfer_cube, aloha_insertion, panda_pick_block, ...).", read_only=True, required=True),
    ParamSpec("seed", "int", 0, "Seed of the first episode (~/reset starts others).", min=0, max=2 ** 62,
              read_only=True),
    ParamSpec("episode_length", "float", 0.0, "Simulated seconds after which an episode is done (0: the "
              "task's own length).", min=0.0, max=86400.0, read_only=True),
    ParamSpec("trajectory_topic", "str", "", "JointTrajectory input (default: the adapter.yaml "
              "controller_topic of the task's embodiment).", read_only=True),
    ParamSpec("joint_states_topic", "str", "/joint_states", "sensor_msgs/JointState output.", read_only=True),
    ParamSpec("camera_topics", "str_array", [], "sensor_msgs/Image output per camera of the task, in the "
              "task's camera order (default: /cameras/<camera>/image_raw).", read_only=True),
    # the defaults are lib.sim.base.CAMERA_SIZE (this floor cannot import it; test_record checks they agree)
    ParamSpec("image_width", "int", 320, "Rendered frame width (pixels).", min=8, max=4096, read_only=True),
    ParamSpec("image_height", "int", 240, "Rendered frame height (pixels).", min=8, max=4096, read_only=True),
    ParamSpec("camera_rate", "float", 20.0, "Frames per simulated second per camera (0: no cameras). "
              "Frames are rendered at control-period instants, so the rate is at most the control rate.",
              min=0.0, max=1000.0, read_only=True),
    ParamSpec("joint_state_rate", "float", 50.0, "Joint states (and success/reward/done) per simulated "
              "second, at most the control rate.", min=0.1, max=10000.0, read_only=True),
    ParamSpec("real_time_factor", "float", 1.0, "Simulated seconds per wall-clock second (below 1: slower "
              "than real time).", min=0.01, max=100.0, read_only=True),
    ParamSpec("publish_clock", "str", "auto", "Publish /clock from the simulation (the graph then runs on "
              "use_sim_time): 'auto' does whenever real_time_factor is not 1.", choices=["auto", "true", "false"],
              read_only=True),
    ParamSpec("max_lag", "float", 0.25, "Wall-clock mode: when the simulation falls further behind the wall "
              "clock than this (s), its clock jumps forward to the wall clock (counted as behind_real_time).",
              min=0.01, max=60.0, read_only=True),
    ParamSpec("success_topic", "str", "/kairos/sim/success", "std_msgs/Bool: the task's success signal.",
              read_only=True),
    ParamSpec("reward_topic", "str", "/kairos/sim/reward", "std_msgs/Float64: the task's reward.", read_only=True),
    ParamSpec("done_topic", "str", "/kairos/sim/done", "std_msgs/Bool: the episode reached its length.",
              read_only=True),
    ParamSpec("allow_partial_joints_goal", "bool", False, "Accept trajectories naming only some of the "
              "controller's joints (the others hold), as the joint_trajectory_controller parameter.",
              read_only=True),
    ParamSpec("allow_nonzero_velocity_at_trajectory_end", "bool", False, "Accept trajectories whose last point "
              "has nonzero velocities, as the joint_trajectory_controller parameter.", read_only=True),
    ParamSpec("velocity_tolerance", "float", 1.2, "Refuse trajectories needing more than max_velocity "
              "(adapter.yaml) times this: between points, in point velocities, and from the commanded "
              "position at the start to the first point (a start jump).", min=1.0, max=100.0, read_only=True),
    ParamSpec("start_tolerance", "float", 0.01, "Position change (rad or m) from the commanded state to "
              "the first point that never counts as a start jump.", min=0.0, max=1.0, read_only=True),
    ParamSpec("reset_timeout", "float", 30.0, "Seconds ~/reset waits for the simulation thread.", min=0.1,
              max=600.0, read_only=True),
    ParamSpec("diagnostics_period", "float", 1.0, "Seconds between /diagnostics messages.", min=0.05,
              max=60.0, read_only=True),
]
