"""Robot sessions without a transport (kairos_ros/remote/session.py): isolation, reset, newest wins, caps."""
from __future__ import annotations

import numpy as np
import pytest

from kairos_ros.backends.baselines import HoldBackend, observed_slots
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.remote.session import LatestSlot, Request, ServedModel, SessionLimit, SessionManager
from serve_util import observation

SPEC = load_embodiment("aloha")


class Recording(HoldBackend):
    """hold, remembering every stamp it predicted from and its resets (a stand-in for a world state)."""

    def __init__(self, spec):
        super().__init__(spec, 0)
        self.seen, self.resets = [], 0

    def reset(self):
        super().reset()
        self.resets += 1
        self.seen = []

    def predict(self, history, horizon, step_period):
        self.seen.extend(o.stamp for o in history if o.stamp not in self.seen)
        return super().predict(history, horizon, step_period)


def served(**kw) -> ServedModel:
    return ServedModel(lambda: Recording(SPEC), SPEC.name, tuple(SPEC.slot_names), 8, 0.05, 4, **kw)


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_each_session_has_its_own_backend_and_sees_only_its_own_robot():
    manager = SessionManager(served(), 4, 10.0)
    sessions = []
    for _ in range(2):
        manager.reserve()
        sessions.append(manager.open())
    a, b = sessions
    assert a.backend is not b.backend and a.id != b.id
    for i in range(3):
        a.observe([observation(SPEC, 1.0 + i, offset=0.1)])
        b.observe([observation(SPEC, 100.0 + i, offset=-0.1)])
        pa, pb = a.predict(), b.predict()
    assert a.backend.seen == [1.0, 2.0, 3.0] and b.backend.seen == [100.0, 101.0, 102.0]
    # hold: the chunk is each robot's own state
    assert np.allclose(pa.chunk.values[0], observed_slots(SPEC, a.history.latest), atol=1e-6)
    assert np.allclose(pb.chunk.values[0], observed_slots(SPEC, b.history.latest), atol=1e-6)
    assert not np.allclose(pa.chunk.values, pb.chunk.values)
    assert pa.chunk.stamp == 3.0 and pb.chunk.stamp == 102.0


def test_reset_instruction_and_backwards_stamps():
    manager = SessionManager(served(), 1, 10.0)
    manager.reserve()
    s = manager.open()
    s.set_instruction("pick the cube")
    s.observe([observation(SPEC, 5.0)])
    s.predict()
    assert s.history.latest.instruction == "pick the cube" and s.backend.resets == 0
    s.reset()
    with pytest.raises(ValueError):
        s.predict()  # the history went with the reset
    s.observe([observation(SPEC, 6.0)])
    s.predict()
    assert s.backend.resets == 1 and s.backend.seen == [6.0]
    s.observe([observation(SPEC, 2.0)])  # back in time: the world state starts afresh
    s.predict()
    assert s.backend.resets == 2 and s.backend.seen == [2.0]


def test_a_failing_backend_resets_the_world_state():
    manager = SessionManager(served(), 1, 10.0)
    manager.reserve()
    s = manager.open()
    s.observe([observation(SPEC, 1.0)])

    def broken(*_a, **_k):
        raise RuntimeError("model exploded")
    s.backend.predict = broken
    with pytest.raises(RuntimeError):
        s.predict()
    assert len(s.history) == 0


def test_newest_request_wins():
    slot = LatestSlot()
    assert slot.put(Request(1, False)) is None
    old = slot.put(Request(2, False))
    assert old.id == 1  # answered 'superseded' by the transport
    assert slot.take().id == 2 and slot.take() is None


def test_session_cap_and_idle_sessions():
    clock = Clock()
    manager = SessionManager(served(), 2, 5.0, clock)
    manager.reserve()
    manager.reserve()
    with pytest.raises(SessionLimit):
        manager.reserve()
    a = manager.open()
    manager.release()  # the second place was never used
    manager.reserve()
    b = manager.open()
    assert manager.count == 2 and manager.full()
    clock.t = 4.0
    b.touch()
    clock.t = 6.0
    assert manager.idle() == [a.id]
    manager.close(a.id)
    assert manager.count == 1 and not manager.full()
    with pytest.raises(ValueError):
        SessionManager(served(), 0, 5.0)


def test_prebuilt_hands_out_a_spare_and_builds_the_next_one_ahead():
    from kairos_ros.remote.session import Prebuilt
    from serve_util import wait_for

    made = []

    def make():
        made.append(object())
        return made[-1]
    first = object()
    factory = Prebuilt(make, first)
    assert factory() is first
    assert wait_for(lambda: len(made) == 1 and factory._spare is made[0], 5.0)
    assert factory() is made[0]  # the spare, never an instance handed out before
    assert wait_for(lambda: len(made) == 2 and factory._spare is made[1], 5.0)
