"""kairos-bringup: the whole graph without launch_ros, one process per node.

    kairos-bringup --embodiment dual_arm --backend hold
    kairos-bringup --embodiment dual_arm --backend extrapolate --bag data/demo_dual_arm --status --report-dir out
    kairos-bringup --embodiment dual_arm --backend kairos --sim aloha_transfer_cube --seed 0 --status --report-dir out

Same arguments as `ros2 launch kairos_ros bringup.launch.py`. Ctrl-C or SIGTERM stops every node
cleanly; a node that dies is named with its exit code and the bringup exits non-zero. With a bag,
the run ends after the bag has been replayed, and --report-dir gets a live evaluation report.
With --sim TASK, a simulated robot (sim_node) is the graph's robot, the adapter is armed and the
graph drives it closed loop: the episode starts (seed --seed) once every node is up and the run
ends when the episode does (its length, or --until success); --report-dir gets sim_report.{json,md}
and a GIF of the first camera beside the newest predicted frame.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from kairos_msgs.srv import ResetSim
from kairos_ros.bringup.args import parse_bool, parse_rate
from kairos_ros.bringup.graph import BACKENDS, describe_graph, required_subscriptions
from kairos_ros.bringup.supervisor import Supervisor
from kairos_ros.core.domain import claim_domain, parse_domain
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.paths import apply_dds_profile
from kairos_ros.core.shm import clean_stale_fastdds
from kairos_ros.eval.live import write_live_report, write_sim_report
from kairos_ros.nodes.monitor_node import MonitorNode

NODE_START_TIMEOUT = 90.0  # seconds; a cold start imports torch and builds the backend


def _checked(parse, name: str):
    """An argparse type from a check of bringup.args (the launch file makes the same checks)."""
    def convert(text: str):
        try:
            return parse(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = name  # argparse names the type in some messages
    return convert


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kairos-bringup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--embodiment", default="dual_arm", help="robot under urdf_adapters/ (default dual_arm)")
    ap.add_argument("--backend", default="hold", choices=BACKENDS, help="world-model backend (default hold)")
    ap.add_argument("--config", default="", help="bringup profile YAML (default config/<embodiment>.yaml)")
    ap.add_argument("--use-sim-time", type=_checked(parse_bool, "use_sim_time"), default=None, metavar="{true,false}",
                    help="use /clock (default: true with --bag, else false)")
    ap.add_argument("--bag", default="", help="rosbag2 to replay into the graph (MCAP or sqlite3)")
    ap.add_argument("--rate", type=_checked(lambda name, text: parse_rate(text, name), "rate"), default=1.0,
                    help="bag replay rate factor")
    ap.add_argument("--loop", action="store_true", help="replay the bag forever")
    ap.add_argument("--visualize", type=_checked(parse_bool, "visualize"), default=True, metavar="{true,false}",
                    help="run the visualizer node (default true; RViz itself: the launch file's rviz:=true)")
    ap.add_argument("--status", action="store_true", help="print a live one-line status; node logs go to files")
    ap.add_argument("--report-dir", default="", help="write the live evaluation report here when the bag ends")
    ap.add_argument("--log-dir", default="", help="node log files (default: <report-dir>/logs with --status)")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: no limit)")
    ap.add_argument("--sim", default="", metavar="TASK",
                    help="drive a simulated robot closed loop (a task of kairos-sim tasks, e.g. aloha_transfer_cube) "
                         "instead of replaying a bag; the adapter is armed")
    ap.add_argument("--seed", type=int, default=0, help="--sim: the episode's seed (default 0)")
    ap.add_argument("--real-time-factor", type=float, default=1.0,
                    help="--sim: simulated seconds per wall-clock second (below 1: /clock, the graph on sim time)")
    ap.add_argument("--until", choices=["done", "success"], default="done",
                    help="--sim: end at the episode's length (done) or 1 s after the first success")
    ap.add_argument("--video", type=_checked(parse_bool, "video"), default=True, metavar="{true,false}",
                    help="--sim with --report-dir: write episode.gif (camera beside the predicted frame)")
    ap.add_argument("--domain", default="",
                    help="ROS_DOMAIN_ID for every node: an integer 0-232, or 'auto' for one no other kairos_ros run "
                         "on this host holds (make demo's default, so a replayed bag never reaches a robot's "
                         "graph on domain 0); default: the environment's ROS_DOMAIN_ID")
    args = ap.parse_args(argv)
    args.domain_id = None  # --domain parsed: an integer, or None for 'auto' (or no --domain)
    if args.domain:
        try:
            args.domain_id = parse_domain(args.domain)
        except ValueError as exc:
            ap.error(str(exc))
    return args


class StatusPrinter:
    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def show(self, line: str) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        elif now - self.last >= 2.0:  # a log, not a terminal: one line every 2 s
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last = now

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def main(argv=None) -> int:
    args = parse_args(argv)
    sim = args.use_sim_time if args.use_sim_time is not None else bool(args.bag) or (
        bool(args.sim) and args.real_time_factor != 1.0)
    try:
        procs = describe_graph(args.embodiment, args.backend, args.config, sim, args.bag, args.rate, args.loop,
                               visualize=args.visualize, sim=args.sim, seed=args.seed,
                               real_time_factor=args.real_time_factor)
        spec = load_embodiment(args.embodiment)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"kairos-bringup: {exc}", file=sys.stderr)
        return 2
    nodes = [p for p in procs if p.is_node]
    player = next((p for p in procs if not p.is_node), None)
    log_dir = args.log_dir or (os.path.join(args.report_dir or "out", "logs") if args.status else None)
    stop = threading.Event()
    reason = {"text": ""}

    def on_signal(signum, _frame):
        reason["text"] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    apply_dds_profile(os.environ)  # before this process's rclpy.init(), inherited by every node
    stale = clean_stale_fastdds()  # left in /dev/shm (RAM) by DDS processes that were killed
    if stale:
        print(f"kairos-bringup: removed {len(stale)} stale Fast DDS shared-memory files from /dev/shm "
              "(left by processes that were killed)", flush=True)
    domain_lock = None  # held while the graph runs (core/domain.py)
    if args.domain:
        domain = args.domain_id
        if domain is None:
            domain, domain_lock = claim_domain()
        os.environ["ROS_DOMAIN_ID"] = str(domain)
    sup = Supervisor(log_dir=log_dir)
    for spec_ in nodes:
        sup.start(spec_)
    print(f"kairos-bringup: started {', '.join(p.name for p in nodes)} (embodiment {args.embodiment}, "
          f"backend {args.backend}{', sim time' if sim else ''}, ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')})"
          + (f"; node logs in {log_dir}/" if log_dir else ""),
          flush=True)

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    monitor = MonitorNode(spec, spec.controller_topic, sim)
    sim_proc = next((p for p in nodes if p.name == "sim"), None)
    if sim_proc is not None:
        monitor.watch_sim(sim_proc.parameters["camera_topics"][0], video=bool(args.report_dir and args.video))
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    failure = None
    printer = StatusPrinter()
    try:
        need = required_subscriptions(nodes[0].param_files[0] if nodes[0].param_files else "")
        failure = _wait_for_nodes(monitor, sup, [p.name for p in nodes], need, stop)
        if failure is None and not stop.is_set():
            print(f"kairos-bringup: graph ready ({len(nodes)} nodes up, their subscriptions matched)", flush=True)
        if failure is None and player is not None and not stop.is_set():
            sup.start(player)
        episode_start = None
        if failure is None and sim_proc is not None and not stop.is_set():
            failure, episode_start = _start_episode(monitor, args.seed)
        started = time.monotonic()
        bag_done_at = None
        while failure is None and not stop.is_set():
            for name, code in sup.exited():
                if name == "player" and code == 0:
                    bag_done_at = bag_done_at or time.monotonic()
                else:
                    failure = f"{'node' if name != 'player' else 'bag player'} '{name}' exited with code {code}"
            if failure:
                break
            if args.status:
                printer.show(monitor.status_line())
            if bag_done_at is not None and time.monotonic() - bag_done_at > 1.5:
                reason["text"] = "bag finished"
                break
            if sim_proc is not None:
                state = monitor.sim_snapshot()
                if state["done"]:
                    reason["text"] = "episode finished"
                    break
                if args.until == "success" and state["success"] and monitor.now() - state["success_at"] > 1.0:
                    reason["text"] = "task succeeded"
                    break
            if args.duration and time.monotonic() - started > args.duration:
                reason["text"] = "duration reached"
                break
            stop.wait(0.25)
    finally:
        if args.status:
            printer.show(monitor.status_line())
            printer.done()
        codes = sup.stop_all()
        snapshot = monitor.snapshot()
        sim_state = monitor.sim_snapshot() if sim_proc is not None else None
        video = list(getattr(monitor, "video", []))
        # Stop spinning and join the thread before tearing down rclpy, or the C++ side aborts.
        executor.shutdown(timeout_sec=2.0)
        spin.join(timeout=2.0)
        monitor.destroy_node()
        rclpy.try_shutdown()
    unclean = {n: c for n, c in codes.items() if n != "player" and c != 0}
    if failure is None and unclean:
        failure = "; ".join(f"node '{n}' did not stop cleanly (exit code {c})" for n, c in unclean.items())
    print(f"kairos-bringup: stopped ({reason['text'] or 'failure'}): "
          + ", ".join(f"{n}={c}" for n, c in codes.items()), flush=True)
    if args.report_dir and args.bag and failure is None:
        path = write_live_report(snapshot, spec, args, args.report_dir)
        print(f"kairos-bringup: evaluation report: {path}", flush=True)
    if sim_state is not None:
        outcome = "SUCCESS" if sim_state["success"] else "no success"
        when = (f" after {sim_state['success_at'] - episode_start:.2f} s" if sim_state["success"] and episode_start
                else "")
        print(f"kairos-bringup: episode {args.sim} seed {args.seed}: {outcome}{when} (max reward "
              f"{sim_state['max_reward']:g})", flush=True)
        if args.report_dir:
            path = write_sim_report(snapshot, sim_state, episode_start, video, args, args.report_dir)
            print(f"kairos-bringup: episode report: {path}", flush=True)
    if failure:
        print(f"kairos-bringup: FAILED: {failure}" + (f" (see {log_dir}/)" if log_dir else ""), file=sys.stderr)
        return 1
    return 0


def _start_episode(monitor, seed: int) -> tuple[str | None, float | None]:
    """Reset the simulated robot to `seed` once the graph is up: (failure or None, start stamp)."""
    if not monitor.reset_client.wait_for_service(timeout_sec=30.0):
        return "the simulated robot's /sim/reset service did not appear", None
    future = monitor.reset_client.call_async(ResetSim.Request(seed=int(seed)))
    deadline = time.monotonic() + 60.0
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not future.done():
        return "the simulated robot did not answer /sim/reset within 60 s", None
    reply = future.result()
    if not reply.success:
        return f"the simulated robot refused the reset: {reply.message}", None
    with monitor.lock:
        monitor.sim.update({"success": False, "success_at": None, "done": False, "reward": 0.0, "max_reward": 0.0})
        monitor.video.clear()
    return None, reply.stamp.sec + reply.stamp.nanosec * 1e-9


def _wait_for_nodes(monitor, sup, names, need: dict, stop) -> str | None:
    """Wait until every node is in the ROS graph and has made the subscriptions data flows through
    (a node is visible before its subscriptions exist); a process that exits first is a failure."""
    deadline = time.monotonic() + NODE_START_TIMEOUT
    own = monitor.subscribed_topics()
    missing = {}
    while time.monotonic() < deadline and not stop.is_set():
        for name, code in sup.exited():
            return f"node '{name}' exited with code {code} during start-up"
        if set(names) <= set(monitor.get_node_names()):
            missing = {t: n for t, n in need.items() if monitor.count_subscribers(t) - (t in own) < n}
            if not missing:
                time.sleep(0.3)  # let the publishers' matching settle
                return None
        time.sleep(0.1)
    if stop.is_set():
        return None
    absent = sorted(set(names) - set(monitor.get_node_names()))
    if absent:
        return f"nodes {absent} did not come up within {NODE_START_TIMEOUT:.0f} s"
    return f"topics {sorted(missing)} lack their subscribers after {NODE_START_TIMEOUT:.0f} s"


if __name__ == "__main__":
    raise SystemExit(main())
