"""nodes.common.StopSignals: what the first and later SIGINT/SIGTERM do in each phase of a node's life
(the handler is called directly: no process, no signal)."""
import signal

import pytest

from kairos_ros.nodes.common import StopSignals


def test_during_construction_the_first_signal_interrupts():
    s = StopSignals()
    with pytest.raises(KeyboardInterrupt):
        s._handle(signal.SIGINT, None)
    assert s.received == [signal.SIGINT]


def test_while_spinning_a_signal_is_only_recorded():
    """Raising there would land in whatever Python runs next, e.g. rclpy converting a message being
    taken (a RuntimeError and exit code 1 seen under kairos-bringup); the spin loop checks `received`."""
    s = StopSignals()
    s.spinning = True
    s._handle(signal.SIGTERM, None)
    s._handle(signal.SIGINT, None)
    assert s.received == [signal.SIGTERM, signal.SIGINT]


def test_while_cleaning_up_signals_are_only_recorded():
    s = StopSignals()
    s.cleaning = True
    s._handle(signal.SIGINT, None)
    assert s.received == [signal.SIGINT]
