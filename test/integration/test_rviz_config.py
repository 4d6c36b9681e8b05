"""config/kairos.rviz (RViz cannot run here): every topic it names is one the graph publishes,
and the launch file's rviz:=true starts what the file relies on."""
import os

import pytest
import yaml

from integration.rosutil import REPO
from integration.test_launch_file import _context, _load_launch_file
from kairos_ros.bringup.graph import describe_graph
from kairos_ros.core.params import validate_params
from kairos_ros.core.visualization import GHOST_DESCRIPTION, GHOST_JOINT_STATES, GHOST_PREFIX
from kairos_ros.params.visualizer import SCHEMA

RVIZ = os.path.join(REPO, "config", "kairos.rviz")
FIXTURE = os.path.join(REPO, "test", "fixtures", "planar_arm", "adapter.yaml")
CONFIG = os.path.join(REPO, "test", "fixtures", "planar_arm", "profile.yaml")


def displays(doc) -> list[dict]:
    return doc["Visualization Manager"]["Displays"]


def named_topics(doc) -> dict[str, str]:
    """Display name -> topic, for every display that subscribes to one."""
    out = {}
    for d in displays(doc):
        for key in ("Topic", "Description Topic"):
            if isinstance(d.get(key), dict) and d[key].get("Value"):
                out[d["Name"]] = d[key]["Value"]
    return out


def published_topics(procs) -> set[str]:
    """What the described graph publishes that RViz can show: the visualizer's outputs (its schema
    defaults) and robot_description of each robot_state_publisher (after remapping)."""
    p = validate_params(SCHEMA, {"embodiment": "x"})
    topics = {p["strip_topic"], p["trails_topic"], p["preview_trails_topic"], p["ghost_topic"]}
    topics |= {f"{p['frame_topic_prefix']}{i}" for i in range(p["frame_topics"])}
    for proc in procs:
        if proc.package == "robot_state_publisher":
            remap = dict(proc.remappings)
            name = remap.get("robot_description", "robot_description")
            topics.add(name if name.startswith("/") else "/" + name)
    return topics


def unpublished(doc, procs) -> dict[str, str]:
    return {name: topic for name, topic in named_topics(doc).items() if topic not in published_topics(procs)}


@pytest.fixture(scope="module")
def doc():
    with open(RVIZ) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def procs():
    return describe_graph(FIXTURE, "hold", CONFIG, rviz=True)


def test_every_rviz_topic_is_published(doc, procs):
    topics = named_topics(doc)
    assert len(topics) >= 6, topics
    assert unpublished(doc, procs) == {}
    broken = {**doc, "Visualization Manager": {**doc["Visualization Manager"], "Displays": displays(doc) + [
        {"Class": "rviz_default_plugins/Image", "Name": "typo", "Topic": {"Value": "/kairos/viz/future_strp"}}]}}
    assert unpublished(broken, procs) == {"typo": "/kairos/viz/future_strp"}  # the check can fail


def test_rviz_shows_robot_ghost_trails_strip_and_preview(doc, procs):
    by_class = {}
    for d in displays(doc):
        by_class.setdefault(d["Class"].split("/")[-1], []).append(d)
    robots = {d["Description Topic"]["Value"]: d for d in by_class["RobotModel"]}
    assert set(robots) == {"/robot_description", GHOST_DESCRIPTION}
    assert robots[GHOST_DESCRIPTION]["TF Prefix"] == GHOST_PREFIX.rstrip("/")
    assert robots["/robot_description"]["TF Prefix"] == ""
    assert all(d["Description Topic"]["Durability Policy"] == "Transient Local" for d in robots.values())
    p = validate_params(SCHEMA, {"embodiment": "x"})
    assert {d["Topic"]["Value"] for d in by_class["MarkerArray"]} == {p["trails_topic"], p["preview_trails_topic"]}
    assert p["strip_topic"] in {d["Topic"]["Value"] for d in by_class["Image"]}
    ghost = next(x for x in procs if x.name == "ghost_state_publisher")
    assert dict(ghost.remappings)["joint_states"] == GHOST_JOINT_STATES == p["ghost_topic"]
    assert ghost.parameters["frame_prefix"] == GHOST_PREFIX


def test_rviz_processes_in_the_graph(procs):
    by_name = {p.name: p for p in procs}
    assert [p.name for p in procs] == ["perception", "world_model", "adapter", "visualizer", "robot_state_publisher",
                                       "ghost_state_publisher", "ghost_root_tf", "rviz"]
    with open(os.path.join(REPO, "test", "fixtures", "planar_arm", "planar_arm.urdf")) as f:
        assert by_name["robot_state_publisher"].parameters["robot_description"] == f.read()
    assert by_name["ghost_root_tf"].arguments == ["--frame-id", "world", "--child-frame-id", "ghost/world"]
    assert by_name["rviz"].arguments == ["-d", RVIZ, "-f", "base_link"]
    assert [p.name for p in describe_graph(FIXTURE, "hold", CONFIG, visualize=False)] == [
        "perception", "world_model", "adapter"]


def test_launch_file_starts_rviz_when_asked(monkeypatch):
    module = _load_launch_file(monkeypatch)
    names = [a.kwargs["name"] for a in module._launch_setup(_context(module, embodiment=FIXTURE, config=CONFIG))
             if "name" in a.kwargs]
    assert names == ["perception", "world_model", "adapter", "visualizer"]
    actions = [a for a in module._launch_setup(_context(module, embodiment=FIXTURE, config=CONFIG, rviz="true"))
               if "name" in a.kwargs]
    by_name = {a.kwargs["name"]: a.kwargs for a in actions}
    assert by_name["ghost_state_publisher"]["package"] == "robot_state_publisher"
    assert by_name["ghost_state_publisher"]["parameters"][-1]["frame_prefix"] == GHOST_PREFIX
    assert ("joint_states", GHOST_JOINT_STATES) in by_name["ghost_state_publisher"]["remappings"]
    assert by_name["ghost_root_tf"]["package"] == "tf2_ros"
    assert (by_name["rviz"]["package"], by_name["rviz"]["executable"]) == ("rviz2", "rviz2")
    assert by_name["rviz"]["arguments"][:2] == ["-d", RVIZ]
    names = [a.kwargs["name"] for a in module._launch_setup(_context(module, embodiment=FIXTURE, config=CONFIG,
                                                                    visualize="false")) if "name" in a.kwargs]
    assert names == ["perception", "world_model", "adapter"]
