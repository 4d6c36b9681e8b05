"""Session-wide settings: every test run gets its own DDS domain, discovery stays on this host."""
import os
import sys

from kairos_ros.core.domain import claim_domain

# A domain no other kairos_ros run on this host holds (core/domain.py: a lock file per domain, held
# while this session lives) keeps parallel runs, and a developer's own graph on domain 0, apart.
# Set before any rclpy.init() in this process; child processes inherit it.
if os.environ.get("KAIROS_TEST_DOMAIN_ID"):
    os.environ["ROS_DOMAIN_ID"] = os.environ["KAIROS_TEST_DOMAIN_ID"]
else:
    _DOMAIN, _DOMAIN_LOCK = claim_domain()
    os.environ["ROS_DOMAIN_ID"] = str(_DOMAIN)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# Headless MuJoCo rendering (Mesa's EGL on the CPU), set before any test imports mujoco: it picks its
# GL backend at import, and the default (GLFW) aborts the process without a display.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("AMENT_PREFIX_PATH", sys.prefix)
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
os.environ.setdefault("PYTHONUNBUFFERED", "1")
# The same Fast DDS profile kairos-bringup applies (large camera frames through shared memory).
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config", "fastdds_large_frames.xml"))


def pytest_sessionfinish(session, exitstatus):
    """Tests that SIGKILL a node on purpose leave its Fast DDS files in /dev/shm (RAM): remove them
    (core/shm.py; only files no live process holds)."""
    from kairos_ros.core.shm import clean_stale_fastdds

    clean_stale_fastdds(min_age=2.0)
