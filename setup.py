"""ament_python package kairos_ros (also installable with plain pip on a machine without ROS)."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "kairos_ros"


def tree(folder):
    """data_files entries that keep the folder structure under share/kairos_ros."""
    entries = {}
    for path in glob(os.path.join(folder, "**", "*"), recursive=True):
        if os.path.isfile(path):
            entries.setdefault(os.path.join("share", PACKAGE, os.path.dirname(path)), []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        *tree("launch"),
        *tree("config"),
        *tree("urdf_adapters"),
        *tree("data"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="kairos_ros maintainers",
    maintainer_email="maintainers@kairos-ros.invalid",
    description="ROS 2 node suite for a real-time Kairos-style world-action model.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "perception_node = kairos_ros.nodes.perception_node:main",
            "world_model_node = kairos_ros.nodes.world_model_node:main",
            "adapter_node = kairos_ros.nodes.adapter_node:main",
            "visualizer_node = kairos_ros.nodes.visualizer_node:main",
            "sim_node = kairos_ros.nodes.sim_node:main",
            "kairos-bringup = kairos_ros.bringup.cli:main",
            "kairos-play = kairos_ros.tools.play:main",
            "kairos-eval = kairos_ros.eval.cli:main",
            "kairos-bench = kairos_ros.tools.bench:main",
            "kairos-make-bag = kairos_ros.tools.make_bag:main",
            "kairos-checkpoint = kairos_ros.tools.checkpoint_cli:main",
            "kairos-train = kairos_ros.train.cli:main",
            "kairos-make-urdf = kairos_ros.tools.mjcf_to_urdf:main",
            "kairos-sim = kairos_ros.tools.sim_cli:main",
            "kairos-serve = kairos_ros.serve.cli:main",
        ],
    },
)
