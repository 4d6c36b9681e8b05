"""Safety gates, watchdog, e-stop latch and dry-run routing (pure logic)."""
import numpy as np
import pytest

from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.safety import CONTROLLER, NOWHERE, PREVIEW, GateError, SafetyLimits, SafetyState
from kairos_ros.core.trajectory import TrajectoryPlan

SPEC = load_embodiment("single_arm")
MID = (SPEC.lower + SPEC.upper) / 2


def plan(offsets, dt=0.05):
    pos = MID + np.asarray(offsets, dtype=float)
    return TrajectoryPlan(list(SPEC.joint_names), dt * (np.arange(len(pos)) + 1), pos, np.zeros_like(pos))


def state(**kw):
    return SafetyState(SPEC, SafetyLimits(**kw))


def test_smooth_plan_passes():
    steps = np.linspace(0, 0.02, 5)[:, None] * np.ones(len(MID))  # 0.1 units/s: under every limit
    state().check_plan(plan(steps), MID)


def test_start_jump_gate_names_joint():
    off = np.zeros((3, len(MID)))
    off[:, 2] = 0.5
    with pytest.raises(ChunkError, match="start-jump gate: joint 'robot_panda0_joint3'"):
        state().check_plan(plan(off), MID)


def test_step_gate():
    off = np.zeros((3, len(MID)))
    off[2, 1] = 0.35  # a 0.35 rad step between points 1 and 2
    with pytest.raises(ChunkError, match="step gate: joint 'robot_panda0_joint2'"):
        state(max_step=0.3).check_plan(plan(off, dt=1.0), MID)


def test_velocity_gate():
    off = np.zeros((3, len(MID)))
    off[2:, 0] = 0.15  # 0.15 rad in 0.05 s = 3 rad/s > 2.175 rad/s for robot_panda0_joint1
    with pytest.raises(ChunkError, match="velocity gate: joint 'robot_panda0_joint1' needs 3.000/s between points 1 and 2"):
        state().check_plan(plan(off), MID)


def test_velocity_gate_includes_the_segment_from_the_state():
    """The controller interpolates from the measured state to the first point over the time until it
    is due: 0.05 rad in 5 ms is 10 rad/s, refused; the same step due in 50 ms passes."""
    off = np.zeros((3, len(MID)))
    off[:, 0] = 0.05
    p = plan(off)
    p.times = np.array([0.005, 0.055, 0.105])
    with pytest.raises(GateError, match=r"velocity gate: joint '.*' needs 10.000/s from the current state to "
                                        r"point 0 \(due in 0.005 s\)"):
        state().check_plan(p, MID)
    p.times = np.array([0.05, 0.1, 0.15])
    state().check_plan(p, MID)


def test_issue_case_first_point_019_in_48ms_is_refused():
    """The case found attacking the graph: a first point 0.19 rad away due in 0.048 s (~4 rad/s)."""
    off = np.zeros((2, len(MID)))
    off[:, 0] = 0.19
    p = plan(off)
    p.times = np.array([0.048, 0.098])
    with pytest.raises(GateError, match="velocity gate: joint 'robot_panda0_joint1' needs 3.958/s from the current"):
        state().check_plan(p, MID)


def test_acceleration_gate_names_joint_and_point():
    # joint 2 (index 1, max_acceleration 7.5 rad/s^2, Franka's) holds still, then moves at 0.5 rad/s:
    # at point 2 the velocity changes by 0.5 rad/s over 0.05 s = 10 rad/s^2 (under its 2.175 rad/s limit)
    off = np.zeros((5, len(MID)))
    off[3:, 1] = 0.025 * np.arange(1, 3)
    with pytest.raises(GateError, match=r"acceleration gate: joint 'robot_panda0_joint2' needs 10.000/s\^2 at point 2 "
                                        r"\(> max_acceleration 7.500 x 1.05\)") as info:
        state().check_plan(plan(off), MID)
    assert info.value.gate == "acceleration" and isinstance(info.value, ChunkError)
    # joint 1 (15 rad/s^2) takes the same change; a tolerance of 1.4 lets joint 2 pass too
    off1 = np.zeros((5, len(MID)))
    off1[3:, 0] = off[3:, 1]
    state().check_plan(plan(off1), MID)
    state(acceleration_tolerance=1.4).check_plan(plan(off), MID)


def test_acceleration_gate_on_uneven_times_and_constant_velocity():
    # a constant velocity is no acceleration, whatever the spacing of the points
    t = np.array([0.004, 0.05, 0.07, 0.15, 0.2])
    pos = MID + np.outer(t, np.full(len(MID), 0.1))
    state().check_plan(TrajectoryPlan(list(SPEC.joint_names), t, pos, np.zeros_like(pos)), MID + 0.0004)
    # the change of segment velocity is divided by half the span of its two segments
    pos = pos.copy()
    pos[3:, 4] += 0.02  # joint 5: +0.02 rad in the 0.08 s segment: +0.25 rad/s over (0.15 - 0.05) / 2 s
    state().check_plan(TrajectoryPlan(list(SPEC.joint_names), t, pos, np.zeros_like(pos)), MID + 0.0004)  # 5 < 15
    with pytest.raises(GateError, match=r"joint 'robot_panda0_joint5' needs 5.000/s\^2 at point 2 "
                                        r"\(> max_acceleration 4.000 x 1.05\)"):
        SafetyState(_limited(4, 4.0), SafetyLimits()).check_plan(
            TrajectoryPlan(list(SPEC.joint_names), t, pos, np.zeros_like(pos)), MID + 0.0004)


def _limited(k, acc):
    """SPEC with joint k's acceleration limit set to acc."""
    from dataclasses import replace

    limits = SPEC.max_acceleration.copy()
    limits[k] = acc
    return replace(SPEC, max_acceleration=limits)


def test_acceleration_gate_leaves_out_the_segment_from_the_state():
    """A first point 5 ms ahead of a state 5 mm away (1 rad/s, within the velocity gate) then at rest: the
    change from the state's unknown velocity is not an acceleration demand of the plan."""
    off = np.zeros((3, len(MID)))
    off[:, 0] = 0.005
    p = plan(off)
    p.times = np.array([0.005, 0.055, 0.105])
    state().check_plan(p, MID)


def test_gate_errors_carry_their_gate():
    off = np.zeros((3, len(MID)))
    off[:, 2] = 0.5
    with pytest.raises(GateError) as info:
        state().check_plan(plan(off), MID)
    assert info.value.gate == "start_jump"
    s = state()
    s.estop()
    with pytest.raises(GateError) as info:
        s.check_plan(plan(np.zeros((2, len(MID)))), MID)
    assert info.value.gate == "estop"


def test_tolerances_are_validated():
    for name in ("velocity_tolerance", "acceleration_tolerance"):
        with pytest.raises(ValueError, match=f"{name} = 0.9 must be >= 1"):
            SafetyLimits(**{name: 0.9})


def test_watchdog_fires_once_per_stale_period():
    s = state(watchdog_timeout=1.0)
    assert not s.watchdog(0.5, started=0.0)
    assert s.watchdog(1.5, started=0.0)
    assert not s.watchdog(3.0, started=0.0), "hold must be sent once, not repeatedly"
    s.accepted(4.0)
    assert not s.watchdog(4.5, started=0.0)
    assert s.watchdog(5.1, started=0.0)


def test_estop_latches_and_routes_nowhere():
    s = state()
    s.armed = True
    assert s.route() == CONTROLLER
    s.estop()
    assert s.route() == NOWHERE
    with pytest.raises(ChunkError, match="e-stop"):
        s.check_plan(plan(np.zeros((2, len(MID)))), MID)
    s.reset_estop()
    assert s.route() == CONTROLLER and s.holding


def test_dry_run_by_default():
    assert state().route() == PREVIEW


@pytest.mark.parametrize("kw", [{"max_start_jump": 0}, {"max_step": -1}, {"watchdog_timeout": 0},
                                {"velocity_tolerance": 0.5}])
def test_bad_limits_named(kw):
    with pytest.raises(ValueError, match=list(kw)[0]):
        SafetyLimits(**kw)
