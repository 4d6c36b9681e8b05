"""kairos-play: replay a rosbag2 (MCAP or sqlite3) into the ROS graph with its original timing.

    kairos-play BAG [--rate 2.0] [--loop] [--clock] [--remap /old:=/new ...] [--topics T ...]

Messages are published as the raw CDR bytes stored in the bag (no decode/encode round trip).
With --clock, /clock follows the bag time (publish before each message, and at --clock-rate Hz
in between) so nodes run with use_sim_time:=true. A loop restarts the bag clock, which the nodes
see as time jumping backwards and handle by resetting.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock

from kairos_ros.lib.rostime import to_time


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kairos-play", description=__doc__.split("\n\n")[0])
    ap.add_argument("bag", help="rosbag2 folder (or a single .mcap / .db3 file)")
    ap.add_argument("--rate", type=float, default=1.0, help="replay speed factor (default 1.0)")
    ap.add_argument("--loop", action="store_true", help="start over at the end, forever")
    ap.add_argument("--clock", action="store_true", help="publish /clock from the bag time")
    ap.add_argument("--clock-rate", type=float, default=100.0, help="/clock messages per second (default 100)")
    ap.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="rename a topic")
    ap.add_argument("--topics", nargs="+", default=None, help="replay only these topics")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to wait before the first message")
    ap.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                    help="wait up to S seconds until every replayed topic has a subscriber")
    ap.add_argument("--wait-topic", action="append", default=[], metavar="TOPIC",
                    help="with --wait-for-subscribers: wait only for these (output) topics; topics the bag "
                         "does not hold are ignored (default: every replayed topic)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.rate <= 0:
        ap.error(f"--rate {args.rate} must be > 0")
    if args.clock_rate <= 0:
        ap.error(f"--clock-rate {args.clock_rate} must be > 0")
    for item in args.remap:
        if ":=" not in item:
            ap.error(f"--remap '{item}' must look like /from:=/to")
    return args


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class (ImportError names the type)."""
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"message type '{msgtype}' is not available in this ROS environment") from exc


def open_reader(path: str):
    bag = Path(path)
    if not bag.exists():
        raise FileNotFoundError(f"bag '{path}' does not exist")
    if bag.is_file():
        bag = bag.parent
    return AnyReader([bag])


def main(argv=None) -> int:
    args = parse_args(argv)
    remap = dict(item.split(":=", 1) for item in args.remap)
    try:
        reader = open_reader(args.bag)
        reader.open()
    except Exception as exc:  # rosbags raises several types for unreadable bags
        print(f"kairos-play: cannot open bag '{args.bag}': {exc}", file=sys.stderr)
        return 2

    rclpy.init(args=["--ros-args", "-r", "__node:=kairos_player"])
    node = rclpy.create_node("kairos_player")
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    try:
        conns = [c for c in reader.connections if args.topics is None or c.topic in args.topics]
        if not conns:
            print(f"kairos-play: no topics to replay in '{args.bag}'", file=sys.stderr)
            return 2
        pubs = {}
        for conn in conns:
            if conn.topic not in pubs:
                pubs[conn.topic] = node.create_publisher(message_class(conn.msgtype), remap.get(conn.topic, conn.topic),
                                                         QoSProfile(depth=100))
        clock_pub = node.create_publisher(Clock, "/clock", 10) if args.clock else None
        waited = [p for p in pubs.values() if not args.wait_topic or p.topic_name in args.wait_topic]
        _wait_for_subscribers(waited, args.wait_for_subscribers, stop)
        if args.delay > 0:
            time.sleep(args.delay)
        count = 0
        while not stop["flag"]:
            count += _play_once(reader, conns, pubs, clock_pub, args, stop)
            if not args.loop:
                break
        if not args.quiet:
            print(f"kairos-play: replayed {count} messages from {args.bag}", flush=True)
        time.sleep(0.2)  # let the last messages leave before the publishers go away
        return 0
    except KeyboardInterrupt:
        return 0
    except ImportError as exc:
        print(f"kairos-play: {exc}", file=sys.stderr)
        return 2
    finally:
        reader.close()
        node.destroy_node()
        rclpy.try_shutdown()


def _wait_for_subscribers(pubs, timeout: float, stop) -> None:
    """Until each publisher has matched a subscription: DDS discovery of this new process takes a
    moment, and a message published before it is matched is lost to the subscriber."""
    deadline = time.monotonic() + timeout
    while timeout > 0 and time.monotonic() < deadline and not stop["flag"]:
        if all(p.get_subscription_count() > 0 for p in pubs):
            time.sleep(0.2)  # the subscriber's side of the match settles too
            return
        time.sleep(0.05)


def _play_once(reader, conns, pubs, clock_pub, args, stop) -> int:
    start_wall = None
    start_bag = None
    next_clock = 0.0
    count = 0
    for conn, t_ns, raw in reader.messages(connections=conns):
        if stop["flag"]:
            break
        t_bag = t_ns * 1e-9
        if start_wall is None:
            start_wall, start_bag = time.monotonic(), t_bag
        due = start_wall + (t_bag - start_bag) / args.rate
        # Sleep in small steps so /clock keeps ticking between sparse messages.
        while True:
            now = time.monotonic()
            if clock_pub is not None and now >= next_clock:
                sim = start_bag + (min(now, due) - start_wall) * args.rate
                clock_pub.publish(_clock(sim))
                next_clock = now + 1.0 / args.clock_rate
            if now >= due or stop["flag"]:
                break
            time.sleep(min(due - now, 1.0 / args.clock_rate))
        if clock_pub is not None:
            clock_pub.publish(_clock(t_bag))
        pubs[conn.topic].publish(bytes(raw))
        count += 1
    return count


def _clock(seconds: float):
    return Clock(clock=to_time(seconds))


if __name__ == "__main__":
    raise SystemExit(main())
