"""nodes.common.StopSignals: what the first and later SIGINT/SIGTERM do in each phase of a node's life
(the handler is called directly: no process, no signal)."""
import os
import signal
import sys

import pytest

from kairos_ros.nodes import common
from kairos_ros.nodes.common import StopSignals


def _frame_in(filename: str):
    """A Python frame whose code is in `filename` (where a signal would land)."""
    return eval(compile("sys._getframe()", filename, "eval"), {"sys": sys})


def test_during_construction_a_signal_in_the_package_code_interrupts_once():
    s = StopSignals()
    with pytest.raises(KeyboardInterrupt):
        s._handle(signal.SIGINT, _frame_in(common.__file__))
    s._handle(signal.SIGTERM, _frame_in(common.__file__))  # already interrupted: only recorded
    assert s.received == [signal.SIGINT, signal.SIGTERM]


def test_during_construction_a_signal_inside_a_library_is_only_recorded():
    """Raised in torch's import (C++ calling back into Python) the KeyboardInterrupt aborted the
    perception node (exit -6); there it is recorded, and a later signal in the package's own code
    still interrupts."""
    s = StopSignals()
    library = os.path.join(os.path.dirname(pytest.__file__), "module.py")  # any file outside kairos_ros
    s._handle(signal.SIGINT, _frame_in(library))
    s._handle(signal.SIGINT, None)  # no Python frame at all
    assert s.received == [signal.SIGINT, signal.SIGINT]
    with pytest.raises(KeyboardInterrupt):
        s._handle(signal.SIGTERM, _frame_in(common.__file__))


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
