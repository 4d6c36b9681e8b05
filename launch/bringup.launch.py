"""Bring up the kairos_ros graph on a ROS 2 install:

    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm backend:=hold
    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm backend:=extrapolate bag:=/path/to/bag

The node list comes from kairos_ros.bringup.graph, the same description `kairos-bringup` runs on
machines without launch_ros.
"""
from launch import LaunchDescription
import os
import sys

from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from kairos_ros.bringup.graph import describe_graph

ARGS = [
    ("embodiment", "dual_arm", "Robot: a folder under urdf_adapters/ (single_arm, dual_arm, dexterous_hand)."),
    ("backend", "hold", "World-model backend: hold, extrapolate (baselines) or kairos."),
    ("config", "", "Bringup profile YAML (default: config/<embodiment>.yaml)."),
    ("use_sim_time", "", "Use /clock (default: true when a bag is replayed, else false)."),
    ("bag", "", "A rosbag2 folder (MCAP or sqlite3) to replay into the graph with /clock."),
    ("rate", "1.0", "Bag replay rate factor."),
    ("loop", "false", "Replay the bag in a loop."),
]


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _launch_setup(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGS}
    bag = value["bag"]
    sim = _truthy(value["use_sim_time"]) if value["use_sim_time"] else bool(bag)
    procs = describe_graph(embodiment=value["embodiment"], backend=value["backend"], config=value["config"],
                           use_sim_time=sim, bag=bag, rate=float(value["rate"]), loop=_truthy(value["loop"]),
                           play_delay=3.0)
    actions = []
    from kairos_ros.core.paths import apply_dds_profile

    env = dict(os.environ)
    profile = apply_dds_profile(env)
    if profile:  # large camera frames through Fast DDS shared memory (see the XML file)
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile))
    for proc in procs:
        if proc.is_node:
            actions.append(Node(package="kairos_ros", executable=proc.executable, name=proc.name,
                                parameters=[*proc.param_files, proc.parameters],
                                remappings=proc.remappings, output="screen", emulate_tty=True))
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
