"""Where the package's data folders are: a ROS install's share/ or the source checkout."""
from __future__ import annotations

import os

PACKAGE = "kairos_ros"
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def share_dirs() -> list[str]:
    """Candidate roots holding config/, launch/, urdf_adapters/, data/ (first existing wins)."""
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory
        dirs.append(get_package_share_directory(PACKAGE))
    except Exception:  # not installed through ament, or AMENT_PREFIX_PATH unset
        pass
    dirs.append(_SOURCE_ROOT)
    return dirs


def find_data(*parts: str) -> str | None:
    for root in share_dirs():
        path = os.path.join(root, *parts)
        if os.path.exists(path):
            return path
    return None


FASTDDS_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def apply_dds_profile(env: dict) -> str | None:
    """Point Fast DDS at the bundled large-frame profile unless the user chose a profile already.

    Returns the profile path applied (None when the user's own setting was kept or none is found).
    Other RMW implementations ignore these variables.
    """
    if any(env.get(var) for var in FASTDDS_VARS):
        return None
    path = find_data("config", "fastdds_large_frames.xml")
    if path:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = path
    return path
