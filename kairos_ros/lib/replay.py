"""A recorded bag through the perception pipeline, in bag time, as the live perception node would
have published it: the one replay loop behind offline evaluation (eval/offline.py) and dataset
decoding (lib/dataset.py).

Messages go in log-time order into a PerceptionPipeline. A synchronised set is taken when an input
arrives or when the node's one-shot flush would have fired (emulated by a timer stepping at half the
period), at most as often as core.rate.PublishRateLimiter allows. Messages on the instruction topic
set the pipeline's instruction (lib.profile.INSTRUCTION_RULE)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kairos_ros.core.image import ImageError
from kairos_ros.core.joints import JointStateError
from kairos_ros.core.rate import PublishRateLimiter
from kairos_ros.core.sync import OutOfOrderError
from kairos_ros.lib import bagio
from kairos_ros.lib.bagsource import connections

GAP_RESTART = 10.0  # s of bag time without messages after which the flush timer restarts


def add_image_to_pipeline(pipeline, name: str, stamp: float, msgtype: str, msg) -> None:
    """The perception node's handling of one camera message (size checked before decoding)."""
    if msgtype == bagio.COMPRESSED:
        pipeline.add_compressed_image(name, stamp, msg.format, msg.data)
    else:
        pipeline.add_raw_image(name, stamp, msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                               msg.data)


@dataclass
class ReplayHooks:
    """What the caller does with the replay. Every hook is optional except on_observation."""
    on_observation: Callable  # (ObservationData, not composed) for each set the node would publish
    on_reset: Callable[[], None] = lambda: None  # input stamps jumped backwards: synchronisation restarted
    on_message: Callable[[], None] = lambda: None  # every message read (progress)
    on_instruction: Callable[[str], None] = lambda text: None
    on_drop: Callable[[str], None] = lambda key: None  # a refused input, by reason (bad_image.<camera>, ...)
    add_image: Callable = add_image_to_pipeline  # (pipeline, camera, stamp, msgtype, msg)
    stop: Callable[[float], bool] = lambda now: False  # checked with each message's bag time


def replay(reader, topics, pipeline, rate: float, hooks: ReplayHooks) -> None:
    """Replay the camera, joint-state and instruction topics of `topics` (lib.bagsource.select_topics)."""
    min_period = 1.0 / rate
    limiter = PublishRateLimiter(rate)
    names = dict(zip(topics.camera_topics, topics.camera_names))
    timer = None

    def after_input(now: float) -> None:
        if pipeline.take_reset():
            limiter.reset()
            hooks.on_reset()
        if limiter.due(now):
            obs = pipeline.poll(compose=False)
            if obs is not None:
                limiter.published(now)
                hooks.on_observation(obs)

    wanted = topics.camera_topics + [topics.joint_topic] + [t for t in [topics.instruction_topic] if t]
    for conn, t_ns, raw in reader.messages(connections=connections(reader, wanted)):
        hooks.on_message()
        now = t_ns * 1e-9
        if timer is None or now < timer - min_period or now - timer > GAP_RESTART:
            timer = now  # first message, a loop back, or a long gap: restart the flush timer
        while timer <= now:
            after_input(timer)
            timer += min_period / 2
        if hooks.stop(now):
            break
        msg = reader.deserialize(raw, conn.msgtype)
        try:
            if conn.topic == topics.instruction_topic:
                pipeline.instruction = msg.data
                hooks.on_instruction(str(msg.data))
                continue
            stamp = bagio.stamp_sec(msg.header)
            if conn.topic == topics.joint_topic:
                pipeline.add_joint_state(stamp, msg.name, msg.position, msg.velocity if len(msg.velocity) else None)
            else:
                hooks.add_image(pipeline, names[conn.topic], stamp, conn.msgtype, msg)
        except ImageError:
            hooks.on_drop(f"bad_image.{names[conn.topic]}")
        except JointStateError:
            hooks.on_drop("bad_joint_state")
        except OutOfOrderError:
            hooks.on_drop("out_of_order")
        after_input(now)
