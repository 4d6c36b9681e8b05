"""Bring up the kairos_ros graph on a ROS 2 install:

    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm backend:=hold
    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm backend:=extrapolate bag:=/path/to/bag
    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm rviz:=true

The node list comes from kairos_ros.bringup.graph, the same description `kairos-bringup` runs on
machines without launch_ros. rviz:=true adds robot_state_publisher for the robot and for its
ghost (frame_prefix ghost/), the static transform joining the ghost to the robot, and rviz2 with
config/kairos.rviz: packages of a ROS install (apt: ros-$ROS_DISTRO-robot-state-publisher,
-tf2-ros, -rviz2), not of PyPI.
"""
from launch import LaunchDescription
import os
import sys

from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from kairos_ros.bringup.graph import describe_graph

ARGS = [
    ("embodiment", "dual_arm", "Robot: a folder under urdf_adapters/ (aloha, franka_panda, shadow_hand) or an alias "
     "(dual_arm, single_arm, dexterous_hand)."),
    ("backend", "hold", "World-model backend: hold, extrapolate (baselines) or kairos."),
    ("config", "", "Bringup profile YAML (default: config/<embodiment>.yaml)."),
    ("use_sim_time", "", "Use /clock (default: true when a bag is replayed, else false)."),
    ("bag", "", "A rosbag2 folder (MCAP or sqlite3) to replay into the graph with /clock."),
    ("rate", "1.0", "Bag replay rate factor."),
    ("loop", "false", "Replay the bag in a loop."),
    ("visualize", "true", "Run the visualizer node (predicted frames, end-effector trails, ghost joint states)."),
    ("rviz", "false", "Also start robot_state_publisher (robot and ghost) and rviz2 with config/kairos.rviz."),
]


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _launch_setup(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGS}
    bag = value["bag"]
    sim = _truthy(value["use_sim_time"]) if value["use_sim_time"] else bool(bag)
    procs = describe_graph(embodiment=value["embodiment"], backend=value["backend"], config=value["config"],
                           use_sim_time=sim, bag=bag, rate=float(value["rate"]), loop=_truthy(value["loop"]),
                           play_delay=3.0, visualize=_truthy(value["visualize"]), rviz=_truthy(value["rviz"]))
    actions = []
    from kairos_ros.core.paths import apply_dds_profile

    env = dict(os.environ)
    profile = apply_dds_profile(env)
    if profile:  # large camera frames through Fast DDS shared memory (see the XML file)
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile))
    from kairos_ros.core.shm import clean_stale_fastdds

    stale = clean_stale_fastdds()  # what killed DDS processes left in /dev/shm, as kairos-bringup does
    if stale:
        actions.append(LogInfo(msg=f"removed {len(stale)} stale Fast DDS shared-memory files from /dev/shm"))
    for proc in procs:
        if proc.is_node:
            actions.append(Node(package=proc.package, executable=proc.executable, name=proc.name,
                                parameters=[*proc.param_files, proc.parameters], remappings=proc.remappings,
                                arguments=proc.arguments, output="screen", emulate_tty=True))
        else:
            # colcon puts console scripts under lib/kairos_ros, not on PATH: run the module with
            # the interpreter that runs the launch.
            actions.append(ExecuteProcess(cmd=[sys.executable, "-m", proc.module, *proc.arguments], name=proc.name,
                                          output="screen"))
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGS],
        OpaqueFunction(function=_launch_setup),
    ])
