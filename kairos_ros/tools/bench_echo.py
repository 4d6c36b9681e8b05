"""A bare rclpy echo node for `kairos-bench pipeline`: what one DDS hop costs on this machine.

It republishes every std_msgs/Header it receives on /kairos_bench/ping to /kairos_bench/pong,
unchanged, with nothing else in its process: no perception, no torch, the same node settings
(core.realtime through run_node). Half the round trip measured by the benchmark is the machine's
floor for one node-to-node hop, the reference the pipeline figures are read against.
"""
from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import Header

from kairos_ros.nodes.common import run_node

PING, PONG = "/kairos_bench/ping", "/kairos_bench/pong"


class EchoNode(Node):
    def __init__(self):
        super().__init__("kairos_bench_echo")
        self.pub = self.create_publisher(Header, PONG, 10)
        self.create_subscription(Header, PING, self.pub.publish, 10)


def main(args=None) -> int:
    return run_node(EchoNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
