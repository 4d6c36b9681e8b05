"""The node graph, described once. bringup.launch.py and kairos-bringup both turn this list into
processes, so the two front ends cannot drift apart.

With `rviz`, the list also holds processes of other ROS packages (robot_state_publisher twice:
the robot and its ghost; tf2_ros' static_transform_publisher placing the ghost's root on the
robot's; rviz2). Those exist only on a ROS install (none is on PyPI), so only the launch file
starts them; kairos-bringup runs the kairos_ros processes."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from kairos_ros.bringup.args import check_embodiment, check_profile_sections, parse_rate
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.kinematics import urdf_root_link
from kairos_ros.core.params import load_ros_params_yaml
from kairos_ros.core.paths import find_data
from kairos_ros.core.visualization import GHOST_DESCRIPTION, GHOST_JOINT_STATES, GHOST_PREFIX
from kairos_ros.lib.profile import default_config
from kairos_ros.lib.sim.base import CAMERA_SIZE
from kairos_ros.lib.sim.registry import TASKS, make_task

BACKENDS = ("hold", "extrapolate", "kairos", "remote", "official")  # remote: kairos-serve; official: the official service
PLAYER_MATCH_TIMEOUT = 30.0  # s the bag player waits for the nodes' input subscriptions to match


@dataclass
class ProcessSpec:
    name: str  # ROS node name (or process name for non-node tools)
    executable: str  # console script, found under lib/kairos_ros on a ROS install
    module: str  # python -m module, used where no ROS install provides the executables
    param_files: list[str] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)  # plain CLI arguments (non-node tools)
    is_node: bool = True
    package: str = "kairos_ros"  # another ROS package's executable when not kairos_ros

    def ros_args(self) -> list[str]:
        """The --ros-args part of a command line for this node."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for path in self.param_files:
            args += ["--params-file", path]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={format_param(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


def format_param(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_param(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


def describe_graph(embodiment: str = "dual_arm", backend: str = "hold", config: str = "",
                   use_sim_time: bool = False, bag: str = "", rate: float = 1.0, loop: bool = False,
                   play_delay: float = 0.0, visualize: bool = True, rviz: bool = False, sim: str = "",
                   seed: int = 0, real_time_factor: float = 1.0) -> list[ProcessSpec]:
    """Every process of a bringup: perception, world model, the embodiment's adapter, the
    visualizer (unless `visualize` is false), the RViz processes with `rviz` (which implies the
    visualizer), a bag player when `bag` is given, and with `sim` (a task name) the simulated robot
    as its driver (sim_node: the profile's camera topics, /joint_states, the controller topic) with
    the adapter armed on start: the simulated robot is the one the graph drives. Raises ValueError
    naming a bad argument."""
    if backend not in BACKENDS:
        raise ValueError(f"backend '{backend}' is not one of {list(BACKENDS)}")
    check_embodiment(embodiment)  # an unknown one: the known robots and aliases, not a missing profile
    rate = parse_rate(rate)
    config = config or default_config(embodiment)
    if not os.path.isfile(config):
        raise ValueError(f"config file '{config}' does not exist")
    config = os.path.abspath(config)
    check_profile_sections(config)
    if sim and bag:
        raise ValueError("bag and sim exclude each other: replay a recording or drive a simulated robot")
    sim_proc = sim_process(sim, embodiment, config, seed, real_time_factor) if sim else None
    common = {"use_sim_time": bool(use_sim_time)}
    procs = [
        ProcessSpec("perception", "perception_node", "kairos_ros.nodes.perception_node", [config],
                    {**common, "embodiment": embodiment}),
        ProcessSpec("world_model", "world_model_node", "kairos_ros.nodes.world_model_node", [config],
                    {**common, "embodiment": embodiment, "backend": backend}),
        ProcessSpec("adapter", "adapter_node", "kairos_ros.nodes.adapter_node", [config],
                    {**common, "embodiment": embodiment, **({"armed_on_start": True} if sim else {})}),
    ]
    if sim_proc is not None:
        procs.insert(0, sim_proc)
    if visualize or rviz:
        procs.append(ProcessSpec("visualizer", "visualizer_node", "kairos_ros.nodes.visualizer_node", [config],
                                 {**common, "embodiment": embodiment}))
    if rviz:
        procs += rviz_processes(embodiment, bool(use_sim_time))
    if bag:
        if not os.path.exists(bag):
            raise ValueError(f"bag '{bag}' does not exist")
        args = [os.path.abspath(bag), "--rate", str(rate), "--clock"]
        if loop:
            args.append("--loop")
        if play_delay > 0:
            args += ["--delay", str(play_delay)]
        # The first frames of a bag would be lost while DDS matches the new player with the nodes.
        args += ["--wait-for-subscribers", str(PLAYER_MATCH_TIMEOUT)]
        for topic in input_subscriptions(config):
            args += ["--wait-topic", topic]
        procs.append(ProcessSpec("player", "kairos-play", "kairos_ros.tools.play", arguments=args, is_node=False))
    return procs




def sim_process(task: str, embodiment: str, config: str, seed: int, real_time_factor: float) -> ProcessSpec:
    """The simulated robot's driver for `task`, publishing what the profile's perception reads."""
    if task not in TASKS:
        raise ValueError(f"sim:='{task}': unknown task (known: {', '.join(sorted(TASKS))})")
    probe = make_task(task)
    try:
        info = probe.info
    finally:
        probe.close()
    robot = load_embodiment(embodiment)
    if load_embodiment(info.embodiment).name != robot.name:
        raise ValueError(f"sim:='{task}' drives '{info.embodiment}', not embodiment '{embodiment}'")
    if not (isinstance(seed, int) and seed >= 0):
        raise ValueError(f"seed:='{seed}' must be an integer >= 0")
    if not (0.01 <= float(real_time_factor) <= 10.0):
        raise ValueError(f"real_time_factor:='{real_time_factor}' must be in [0.01, 10]")
    perception = load_ros_params_yaml(config, "perception")
    topics = list(perception.get("camera_topics", []))
    names = [t.strip("/").split("/")[-2] if t.count("/") >= 2 else t.strip("/") for t in topics]
    if sorted(names) != sorted(info.cameras):
        raise ValueError(f"profile '{config}': camera topics {topics} do not name the cameras of task '{task}' "
                         f"({list(info.cameras)})")
    by_name = dict(zip(names, topics))
    params = {"task": task, "seed": int(seed), "real_time_factor": float(real_time_factor),
              "camera_topics": [by_name[c] for c in info.cameras],
              "image_width": CAMERA_SIZE[0], "image_height": CAMERA_SIZE[1],
              "camera_rate": float(perception.get("rate_hz", 10.0)),
              "joint_states_topic": perception.get("joint_states_topic", "/joint_states")}
    return ProcessSpec("sim", "sim_node", "kairos_ros.nodes.sim_node", [], params)


def rviz_processes(embodiment: str, use_sim_time: bool = False) -> list[ProcessSpec]:
    """robot_state_publisher for the robot and for its ghost (frame_prefix ghost/, fed by the
    visualizer), the static transform that puts the ghost's root link on the robot's, and rviz2
    with config/kairos.rviz and the embodiment's base link as fixed frame."""
    spec = load_embodiment(embodiment)
    urdf_path = getattr(spec, "urdf_path", "")
    if not urdf_path or not os.path.isfile(urdf_path):
        raise ValueError(f"embodiment '{embodiment}' has no URDF file ({urdf_path!r}): RViz needs one")
    with open(urdf_path) as f:
        description = f.read()
    root = urdf_root_link(description, urdf_path)
    base = getattr(spec, "base_link", "") or root
    rviz_config = find_data("config", "kairos.rviz")
    if rviz_config is None:
        raise ValueError("config/kairos.rviz is missing")
    sim = {"use_sim_time": use_sim_time}
    return [
        ProcessSpec("robot_state_publisher", "robot_state_publisher", "", [],
                    {**sim, "robot_description": description}, package="robot_state_publisher"),
        ProcessSpec("ghost_state_publisher", "robot_state_publisher", "", [],
                    {**sim, "robot_description": description, "frame_prefix": GHOST_PREFIX},
                    [("joint_states", GHOST_JOINT_STATES), ("robot_description", GHOST_DESCRIPTION)],
                    package="robot_state_publisher"),
        ProcessSpec("ghost_root_tf", "static_transform_publisher", "", [], dict(sim), [],
                    ["--frame-id", root, "--child-frame-id", GHOST_PREFIX + root], package="tf2_ros"),
        ProcessSpec("rviz", "rviz2", "", [], dict(sim), [], ["-d", rviz_config, "-f", base], package="rviz2"),
    ]


def input_subscriptions(config: str) -> dict[str, int]:
    """The graph's subscriptions on its inputs (cameras, joint states: what a bag or the robot
    publishes): topic -> number of graph subscribers."""
    perception = load_ros_params_yaml(config, "perception") if config else {}
    need = {topic: 1 for topic in perception.get("camera_topics", [])}
    need[perception.get("joint_states_topic", "/joint_states")] = 2  # perception and adapter
    return need


def required_subscriptions(config: str) -> dict[str, int]:
    """Subscriptions the graph's nodes make on the topics data flows through (a bag player
    should not start before they exist): topic -> number of graph subscribers."""
    need = input_subscriptions(config)
    need["/kairos/observation"] = 1  # world model
    need["/kairos/action_chunk"] = 1  # adapter
    return need
