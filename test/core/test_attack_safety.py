"""Classes of defects found by attacking the running graph (holds, bounds, stamps, the inference
scheduler, instructions), tried with variants in pure logic; test/integration/test_attack_graph.py
tries the same over DDS."""
import math

import numpy as np
import pytest

from kairos_ros.core.adapter import plan_chunk
from kairos_ros.core.chunks import ChunkBounds, ChunkError, check_declared_size, validate_chunk
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.safety import GateError, SafetyLimits, SafetyState
from kairos_ros.core.scheduler import CONTROL, IMAGINE, RESET, Cancelled, Expired, InferenceScheduler
from kairos_ros.core.stamps import stamp_problem
from kairos_ros.core.text import InstructionError, check_instruction
from kairos_ros.core.trajectory import cubic_peaks, plan_hold
from kairos_ros.core.types import ActionChunkData

SPECS = {name: load_embodiment(name) for name in ("single_arm", "dual_arm", "dexterous_hand")}


# -- holds never command motion faster than the limits -----------------------------------------
@pytest.mark.parametrize("name", sorted(SPECS))
def test_hold_from_anywhere_stays_within_the_limits(name):
    spec = SPECS[name]
    rng = np.random.default_rng(7)
    span = spec.upper - spec.lower
    safety = SafetyState(spec, SafetyLimits())
    for trial in range(200):
        # inside, just outside, far outside (the reported 4.0 rad on a +-pi joint), moving or not
        q = spec.lower + span * rng.uniform(-1.0, 2.0, size=span.shape)
        v = None if trial % 3 == 0 else rng.uniform(-2, 2, size=span.shape) * spec.max_velocity
        hold = plan_hold(spec, q, 0.1, v)
        assert hold.duration >= 0.1
        target = hold.plan.positions[0]
        assert np.all(target >= spec.lower - 1e-12) and np.all(target <= spec.upper + 1e-12)
        safety.check_hold(hold.plan, q, v)  # the gate agrees
        v0 = np.zeros_like(q) if v is None else np.clip(v, -spec.max_velocity, spec.max_velocity)
        vel, acc = cubic_peaks(target - q, v0, hold.duration)
        assert np.all(vel <= np.maximum(spec.max_velocity, np.abs(v0)) * (1 + 1e-6))
        assert np.all(acc <= spec.max_acceleration * (1 + 1e-6))
        outside = (q < spec.lower) | (q > spec.upper)
        assert len(hold.outside) == int(outside.sum())


def test_reported_case_joint_at_4_rad():
    """Reported: a joint reading 4.0 rad got the limit 3.1416 due in 0.1 s (8.6 rad/s against 3.14)."""
    spec = SPECS["dual_arm"]
    q = (spec.lower + spec.upper) / 2
    k = int(np.argmax(spec.upper))
    q[k] = spec.upper[k] + 0.86
    hold = plan_hold(spec, q, 0.1)
    speed = 1.5 * 0.86 / hold.duration  # the cubic's peak speed
    assert speed <= spec.max_velocity[k]
    assert hold.outside and hold.outside[0][0] == spec.joint_names[k]


def test_hold_gate_refuses_a_fast_hold():
    spec = SPECS["single_arm"]
    q = (spec.lower + spec.upper) / 2
    hold = plan_hold(spec, q, 0.1)
    hold.plan.positions[0, 0] += 0.5  # 0.5 rad in 0.1 s: 7.5 rad/s peak
    with pytest.raises(GateError, match="hold gate: joint 'robot_panda0_joint1' would need 7.500/s") as info:
        SafetyState(spec, SafetyLimits()).check_hold(hold.plan, q)
    assert info.value.gate == "hold"


def test_hold_stops_a_moving_joint_within_its_deceleration():
    spec = SPECS["single_arm"]
    q = (spec.lower + spec.upper) / 2
    v = np.zeros_like(q)
    v[0] = 2.0
    hold = plan_hold(spec, q, 0.1, v)
    assert hold.duration >= 2.0 / spec.max_acceleration[0]
    assert hold.plan.positions[0, 0] > q[0]  # it stops ahead, not by reversing


# -- bounds on everything that reaches a message -------------------------------------------------
def _chunk(rows=4, step=0.05, stamp=10.0, spec=SPECS["single_arm"]):
    return ActionChunkData(stamp=stamp, embodiment=spec.name, slot_names=list(spec.slot_names),
                           values=np.zeros((rows, len(spec.slot_names))), step_period=step)


@pytest.mark.parametrize("kw, field", [
    ({"step": 1.5e9}, "max_step_period"),  # the reported overflow of time_from_start
    ({"step": 2.0}, "max_step_period"),
    ({"rows": 100_000}, "max_chunk_rows"),  # the reported 5,000 s chunk
    ({"rows": 1025}, "max_chunk_rows"),
    ({"rows": 1000, "step": 0.9}, "max_trajectory_duration"),
])
def test_chunk_bounds_name_the_field(kw, field):
    with pytest.raises(ChunkError, match=field):
        validate_chunk(_chunk(**kw), SPECS["single_arm"])


def test_bounds_are_configurable_and_checked_before_allocation():
    bounds = ChunkBounds(max_rows=8, max_step_period=0.1, max_duration=0.5)
    validate_chunk(_chunk(rows=8, step=0.05), SPECS["single_arm"], bounds)
    with pytest.raises(ChunkError, match="max_trajectory_duration 0.5"):
        validate_chunk(_chunk(rows=8, step=0.07), SPECS["single_arm"], bounds)
    for horizon, dim in ((0, 8), (2**32 - 1, 8), (9, 8), (4, 0), (4, 10**6)):
        with pytest.raises(ChunkError):
            check_declared_size(horizon, dim, bounds)
    for bad in ({"max_rows": 0}, {"max_step_period": float("inf")}, {"max_duration": -1.0}):
        with pytest.raises(ValueError):
            ChunkBounds(**bad)


def test_every_time_from_start_of_a_bounded_chunk_fits_a_duration():
    spec = SPECS["single_arm"]
    c = _chunk(rows=1024, step=1.0 / 1024 * 60, stamp=10.0)
    plan = plan_chunk(c, spec, (spec.lower + spec.upper) / 2, now=10.0, max_age=0.5)
    assert plan.times[-1] <= 60.0 + 1e-9 and plan.times[-1] < 2**31 - 1


# -- stamps checked in both directions ------------------------------------------------------------
@pytest.mark.parametrize("stamp, ok", [(10.0, True), (10.05, True), (10.2, False), (110.0, False),
                                       (2.1e9, False), (9.6, True), (9.4, False), (float("nan"), False)])
def test_stamp_problem_both_directions(stamp, ok):
    problem = stamp_problem(stamp, 10.0, 0.5, 0.1, "chunk", "max_chunk_age")
    assert (problem is None) == ok, problem
    if not ok and math.isfinite(stamp) and stamp > 10:
        assert "ahead of the clock" in problem and "future_stamp_tolerance" in problem
        assert len(problem) < 200  # no 300-digit numbers


def test_future_check_survives_a_disabled_age_check():
    assert stamp_problem(110.0, 10.0, 0.0, 0.1, "x") is not None
    assert stamp_problem(-1e9, 10.0, 0.0, 0.1, "x") is None


@pytest.mark.parametrize("ahead", [0.2, 100.0, 2.1e9 - 10.0])
def test_plan_chunk_refuses_chunks_from_the_future(ahead):
    spec = SPECS["single_arm"]
    with pytest.raises(ChunkError, match="ahead of the clock"):
        plan_chunk(_chunk(stamp=10.0 + ahead), spec, (spec.lower + spec.upper) / 2, now=10.0, max_age=0.5)
    with pytest.raises(ChunkError, match="ahead of the clock"):  # max_age 0 disables only the age check
        plan_chunk(_chunk(stamp=10.0 + ahead), spec, (spec.lower + spec.upper) / 2, now=10.0, max_age=0.0)


def test_start_jump_message_reads_well_for_huge_states():
    spec = SPECS["single_arm"]
    q = (spec.lower + spec.upper) / 2
    plan = plan_chunk(_chunk(), spec, q, now=10.0, max_age=0.5)
    with pytest.raises(GateError) as info:
        SafetyState(spec, SafetyLimits()).check_plan(plan, q + 1e300)
    assert len(str(info.value)) < 200 and "1e+300" in str(info.value)


# -- the inference scheduler ---------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_reset_first_then_control_then_imagine():
    s = InferenceScheduler(Clock(), imagine_limit=2)
    assert s.reserve_imagine()
    s.submit_imagine("goal", lambda _o: None)
    s.observe()
    s.request_reset()
    assert s.next(0)[0] == RESET
    assert s.next(0)[0] == CONTROL
    s.observe()  # control keeps priority over a queued goal
    assert s.next(0)[0] == CONTROL
    kind, job = s.next(0)
    assert kind == IMAGINE and job.payload == "goal"
    assert s.next(0) == (None, None)


def test_newest_observation_wins():
    s = InferenceScheduler(Clock())
    for _ in range(50):
        s.observe()
    assert s.next(0)[0] == CONTROL and s.next(0) == (None, None)


def test_goals_beyond_the_queue_are_refused_at_once():
    s = InferenceScheduler(Clock(), imagine_limit=2)
    answers = [s.reserve_imagine() for _ in range(50)]
    assert answers[:2] == [True, True] and not any(answers[2:])
    assert s.counts["imagine_refused"] == 48
    s.release_imagine()
    assert s.reserve_imagine()


def test_cancel_and_expiry_end_every_goal():
    clock = Clock()
    s = InferenceScheduler(clock, imagine_limit=3, imagine_timeout=5.0)
    ends = {}
    jobs = [s.submit_imagine(i, lambda o, i=i: ends.setdefault(i, o)) for i in range(3)]
    assert s.cancel_imagine(jobs[0]) and isinstance(ends[0], Cancelled)
    assert not s.cancel_imagine(jobs[0])  # once
    clock.t = 6.0
    for _ in range(3):
        s.observe()
        assert s.next(0)[0] == CONTROL  # control kept the thread busy past the deadline
    assert isinstance(ends[1], Expired) and isinstance(ends[2], Expired)
    assert s.counts["imagine_expired"] == 2
    s.submit_imagine(9, lambda o: ends.setdefault(9, o))
    s.stop()
    assert isinstance(ends[9], Cancelled) and s.next(0) is None


def test_jobs_with_array_payloads_cancel_by_identity():
    """Found over DDS: comparing jobs by value compared their arrays and raised in the cancel callback."""
    s = InferenceScheduler(Clock(), imagine_limit=3)
    a = s.submit_imagine((np.zeros(3),), lambda _o: None)
    b = s.submit_imagine((np.zeros(3),), lambda _o: None)
    assert s.cancel_imagine(b) and list(s.queue) == [a]


def test_a_job_finishes_once():
    out = []
    s = InferenceScheduler(Clock())
    job = s.submit_imagine(1, out.append)
    assert s.next(0)[1] is job
    assert job.finish("result") and not job.finish("again") and out == ["result"]
    assert not s.cancel_imagine(job)  # running: cannot be removed


# -- instructions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["pick\x00drop", "\x00", "a\x07b", "x\x1b[2J", "x" * 2001, "\ud800"])
def test_bad_instructions_are_refused(text):
    with pytest.raises(InstructionError):
        check_instruction(text)


@pytest.mark.parametrize("text", ["", "transfer the cube", "line one\nline two\tend", "Würfel übergeben 立方体"])
def test_good_instructions_pass(text):
    assert check_instruction(text) == text
