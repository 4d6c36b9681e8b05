"""Bring up the kairos_ros graph on a ROS 2 install:

    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm backend:=hold
    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm backend:=extrapolate bag:=/path/to/bag
    ros2 launch kairos_ros bringup.launch.py embodiment:=dual_arm rviz:=true

The node list comes from kairos_ros.bringup.graph, the same description `kairos-bringup` runs on
machines without launch_ros. rviz:=true adds robot_state_publisher for the robot and for its
ghost (frame_prefix ghost/), the static transform joining the ghost to the robot, and rviz2 with
config/kairos.rviz: packages of a ROS install (apt: ros-$ROS_DISTRO-robot-state-publisher,
-tf2-ros, -rviz2), not of PyPI.

As with kairos-bringup, the launch ends when any of its processes exits: a node that dies (the
reason names it and its exit code), or the bag player once the bag has been replayed (1.5 s later,
for the last chunks). Ctrl-C stops every node cleanly. Each node also stops when the launch process
dies (SIGTERM to `ros2 launch`, which does not stop its processes itself: ros2/launch#666); see
kairos_ros.nodes.common.watch_parent. Arguments are checked by kairos_ros.bringup.args, the
same checks kairos-bringup makes.
"""
from launch import LaunchDescription
import os
import sys

from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, LogInfo, OpaqueFunction,
                            RegisterEventHandler, SetEnvironmentVariable, TimerAction)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from kairos_ros.bringup.args import parse_bool, parse_rate
from kairos_ros.bringup.graph import describe_graph

BAG_DONE_GRACE = 1.5  # s between the bag's end and the shutdown, as kairos-bringup (the last chunks)

ARGS = [
    ("embodiment", "dual_arm", "Robot: a folder under urdf_adapters/ (aloha, franka_panda, shadow_hand) or an alias "
     "(dual_arm, single_arm, dexterous_hand)."),
    ("backend", "hold", "World-model backend: hold, extrapolate (baselines), kairos, remote (kairos-serve), or official (the official Kairos service, official_allow_pickle)."),
    ("config", "", "Bringup profile YAML (default: config/<embodiment>.yaml)."),
    ("use_sim_time", "", "Use /clock (default: true when a bag is replayed, else false)."),
    ("bag", "", "A rosbag2 folder (MCAP or sqlite3) to replay into the graph with /clock."),
    ("rate", "1.0", "Bag replay rate factor."),
    ("loop", "false", "Replay the bag in a loop."),
    ("visualize", "true", "Run the visualizer node (predicted frames, end-effector trails, ghost joint states)."),
    ("rviz", "false", "Also start robot_state_publisher (robot and ghost) and rviz2 with config/kairos.rviz."),
    ("sim", "", "Drive a simulated robot closed loop instead (a task name, e.g. aloha_transfer_cube): sim_node "
     "publishes the cameras and joint states and executes the armed adapter's trajectories; /sim/reset starts "
     "a new episode."),
    ("seed", "0", "sim: seed of the first episode."),
    ("real_time_factor", "1.0", "sim: simulated seconds per wall-clock second (below 1: /clock, sim time)."),
]


def _end_launch_on_exit(name: str, is_player: bool):
    """OnProcessExit callback: end the whole launch when this process exits (unless the launch is
    already shutting down, when every process exits)."""

    def on_exit(event, context):
        if context.is_shutdown:
            return None
        code = event.returncode
        if is_player and code == 0:
            return [LogInfo(msg="bag finished: stopping the graph"),
                    TimerAction(period=BAG_DONE_GRACE, actions=[EmitEvent(event=Shutdown(reason="bag finished"))])]
        reason = f"{'bag player' if is_player else 'node'} '{name}' exited with code {code}"
        return [LogInfo(msg=f"{reason}: stopping the graph"), EmitEvent(event=Shutdown(reason=reason))]

    return on_exit


def _launch_setup(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGS}
    bag = value["bag"]
    rtf = parse_rate(value["real_time_factor"], "real_time_factor")
    try:
        seed = int(value["seed"])
    except ValueError:
        raise ValueError(f"seed:='{value['seed']}' is not an integer") from None
    sim = (parse_bool("use_sim_time", value["use_sim_time"]) if value["use_sim_time"]
           else bool(bag) or (bool(value["sim"]) and rtf != 1.0))
    procs = describe_graph(embodiment=value["embodiment"], backend=value["backend"], config=value["config"],
                           use_sim_time=sim, bag=bag, rate=parse_rate(value["rate"]),
                           loop=parse_bool("loop", value["loop"]), play_delay=3.0,
                           visualize=parse_bool("visualize", value["visualize"]),
                           rviz=parse_bool("rviz", value["rviz"]), sim=value["sim"], seed=seed,
                           real_time_factor=rtf)
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
            action = Node(package=proc.package, executable=proc.executable, name=proc.name,
                          parameters=[*proc.param_files, proc.parameters], remappings=proc.remappings,
                          arguments=proc.arguments, output="screen", emulate_tty=True)
        else:
            # colcon puts console scripts under lib/kairos_ros, not on PATH: run the module with
            # the interpreter that runs the launch, through bringup.child (SIGTERM if the launch dies).
            action = ExecuteProcess(cmd=[sys.executable, "-m", "kairos_ros.bringup.child", proc.module,
                                         *proc.arguments], name=proc.name, output="screen")
        actions.append(action)
        actions.append(RegisterEventHandler(OnProcessExit(
            target_action=action, on_exit=_end_launch_on_exit(proc.name, not proc.is_node))))
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGS],
        OpaqueFunction(function=_launch_setup),
    ])
