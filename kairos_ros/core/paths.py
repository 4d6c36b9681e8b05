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
