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


RESOURCE_PREFIX = f"package://{PACKAGE}/"


def resolve_resource(value: str, what: str) -> str:
    """A path given as `package://kairos_ros/<relative path>` (the ROS resource convention) ->
    the file in the package's share folder or the source checkout; other values unchanged.
    Raises ValueError naming `what` when the packaged file does not exist."""
    if not value.startswith("package://"):
        return value
    if not value.startswith(RESOURCE_PREFIX):
        raise ValueError(f"{what} = '{value}': only {RESOURCE_PREFIX}... resources can be resolved here")
    rel = value[len(RESOURCE_PREFIX):]
    path = find_data(*rel.split("/")) if rel else None
    if path is None:
        raise ValueError(f"{what} = '{value}': no such file in the {PACKAGE} package ({', '.join(share_dirs())})")
    return path


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
