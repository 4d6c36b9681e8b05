"""Write docs/parameters.md from the nodes' parameter schemas: python -m kairos_ros.tools.gen_param_docs"""
from __future__ import annotations

import os
import sys

from kairos_ros.core.params import schema_markdown
from kairos_ros.params.adapter import SCHEMA as ADAPTER
from kairos_ros.params.perception import SCHEMA as PERCEPTION
from kairos_ros.params.sim import SCHEMA as SIM
from kairos_ros.params.visualizer import SCHEMA as VISUALIZER
from kairos_ros.params.world_model import SCHEMA as WORLD_MODEL

HEADER = "# Node parameters\n\nGenerated from the parameter schemas by `python -m kairos_ros.tools.gen_param_docs`.\n"


def render() -> str:
    parts = [HEADER]
    for title, schema in (("perception_node", PERCEPTION), ("world_model_node", WORLD_MODEL),
                          ("adapter_node", ADAPTER), ("visualizer_node", VISUALIZER), ("sim_node", SIM)):
        parts.append(f"\n## {title}\n\n{schema_markdown(schema).rstrip()}\n")
    return "".join(parts)


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "docs", "parameters.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(render())
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
