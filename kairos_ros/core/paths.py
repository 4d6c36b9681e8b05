"""Where the package's data folders are: a ROS install's share/ or the source checkout.

Paths into these folders come from parameters (package://kairos_ros/...) and launch arguments, so
they are confined: a relative path made of plain names only (no '..', '.', empty parts, absolute
parts, backslashes, NUL bytes or %-escapes), and the file it resolves to (os.path.realpath, i.e.
after following symlinks) must lie inside one of the package's roots. Anything else is a
ValueError naming what was given; a file kept elsewhere is given by its absolute path instead.
"""
from __future__ import annotations

import os

PACKAGE = "kairos_ros"
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Where this file really is: with `colcon build --symlink-install` the share folder's files and the
# build folder's package link back to the source checkout, which is then a root too.
_REAL_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


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


def _components(parts, what: str, shown: str) -> list[str]:
    """The plain names making up `parts` ('a/b' splits on '/'); ValueError for anything else."""
    names = []
    for part in parts:
        if not isinstance(part, str):
            raise ValueError(f"{what} = {shown}: path parts must be strings, got {type(part).__name__}")
        for name in part.split("/"):
            if "\0" in name:
                problem = "contains a NUL byte"
            elif "\\" in name:
                problem = "contains a backslash"
            elif "%" in name:
                problem = "contains '%' (escapes are not decoded)"
            elif name == "..":
                problem = "contains '..'"
            elif name == "":
                problem = "has an empty part (an absolute path, or '//')"
            elif name == ".":
                problem = "contains '.'"
            else:
                names.append(name)
                continue
            raise ValueError(f"{what} = {shown}: {problem}; only a relative path of plain names inside "
                             f"the {PACKAGE} package is allowed")
    if not names:
        raise ValueError(f"{what} = {shown}: empty path")
    return names


def _allowed_roots() -> list[str]:
    roots = [os.path.realpath(r) for r in share_dirs()] + [os.path.realpath(_SOURCE_ROOT), _REAL_SOURCE_ROOT]
    return list(dict.fromkeys(roots))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


def find_data(*parts: str, what: str = "data path") -> str | None:
    """The first existing `<root>/<parts...>` over share_dirs(), or None when there is none.

    Raises ValueError naming `what` and the parts when they are not a plain relative path, or when
    the file found resolves (symlinks followed) to a place outside every package root."""
    return _find_data(parts, what, repr("/".join(p if isinstance(p, str) else repr(p) for p in parts)))


def _find_data(parts, what: str, shown: str) -> str | None:
    names = _components(parts, what, shown)
    roots = _allowed_roots()
    for root in share_dirs():
        path = os.path.join(root, *names)
        if os.path.exists(path):
            real = os.path.realpath(path)
            if not any(_inside(real, r) for r in roots):
                raise ValueError(f"{what} = {shown}: resolves to '{real}', outside the {PACKAGE} package "
                                 f"({', '.join(roots)}); give a file kept elsewhere by its absolute path")
            return path
    return None


RESOURCE_PREFIX = f"package://{PACKAGE}/"


def resolve_resource(value: str, what: str) -> str:
    """A path given as `package://kairos_ros/<relative path>` (the ROS resource convention) ->
    the file in the package's share folder or the source checkout; other values unchanged.
    Raises ValueError naming `what` and the value when the packaged file does not exist or the
    path would leave the package (see the module's rules)."""
    if not value.startswith("package://"):
        return value
    if not value.startswith(RESOURCE_PREFIX):
        raise ValueError(f"{what} = '{value}': only {RESOURCE_PREFIX}... resources can be resolved here")
    rel = value[len(RESOURCE_PREFIX):]
    path = _find_data([rel], what, repr(value)) if rel else None
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
