"""package://kairos_ros/... and find_data() stay inside the package (issue 10: a resource value
`package://kairos_ros/../../../etc/passwd` was opened). Every way out is refused with a ValueError
naming the parameter and the value; files inside the package still resolve."""
import importlib.util
import os
import shutil

import pytest

from kairos_ros.core import paths
from kairos_ros.core.paths import find_data, resolve_resource

WHAT = "parameter 'dit_checkpoint'"
GOOD = "package://kairos_ros/config/fastdds_large_frames.xml"


@pytest.mark.parametrize("value, problem", [
    ("package://kairos_ros/../../../etc/passwd", "contains '..'"),
    ("package://kairos_ros/config/../../../../etc/passwd", "contains '..'"),
    ("package://kairos_ros/config/..", "contains '..'"),
    ("package://kairos_ros//etc/passwd", "empty part"),  # the absolute path /etc/passwd appended
    ("package://kairos_ros/config//fastdds_large_frames.xml", "empty part"),
    ("package://kairos_ros/%2Fetc%2Fpasswd", "'%'"),  # URL-encoded absolute path
    ("package://kairos_ros/%2e%2e/%2e%2e/etc/passwd", "'%'"),  # URL-encoded '..'
    ("package://kairos_ros/..\\..\\etc\\passwd", "backslash"),
    ("package://kairos_ros/config\\fastdds_large_frames.xml", "backslash"),
    ("package://kairos_ros/config/fastdds_large_frames.xml\0.png", "NUL byte"),
    ("package://kairos_ros/./config/fastdds_large_frames.xml", "contains '.'"),
])
def test_escaping_resources_are_refused_by_name(value, problem):
    with pytest.raises(ValueError) as exc:
        resolve_resource(value, WHAT)
    message = str(exc.value)
    assert message.startswith(f"{WHAT} = {value!r}: "), message
    assert problem in message and "kairos_ros package" in message


@pytest.mark.parametrize("parts, problem", [
    (("config", "..", "..", "etc", "passwd"), "contains '..'"),
    (("/etc", "passwd"), "empty part"),  # os.path.join would have dropped the root
    (("config", "/etc/passwd"), "empty part"),
    (("config", ""), "empty part"),
    ((), "empty path"),
    (("config", "a\\b"), "backslash"),
    (("config", "x\0"), "NUL byte"),
])
def test_find_data_refuses_escapes(parts, problem):
    with pytest.raises(ValueError, match="bringup profile") as exc:
        find_data(*parts, what="bringup profile")
    assert problem in str(exc.value)


def _package_copy(tmp_path):
    """paths.py loaded from a copy of the package in tmp_path, whose source root is tmp_path."""
    root = tmp_path / "pkg"
    (root / "kairos_ros" / "core").mkdir(parents=True)
    shutil.copy(paths.__file__, root / "kairos_ros" / "core" / "paths.py")
    (root / "config").mkdir()
    (root / "data").mkdir()
    (root / "data" / "real.yaml").write_text("inside: true\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    spec = importlib.util.spec_from_file_location("kairos_paths_copy", root / "kairos_ros" / "core" / "paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, root, outside


def test_symlinks_out_of_the_package_are_refused(tmp_path):
    copy, root, outside = _package_copy(tmp_path)
    if paths.share_dirs()[:-1]:  # an ament share dir comes first; its files must not shadow the copy's
        pytest.skip("kairos_ros is installed through ament here")
    try:
        os.symlink(outside / "secret.txt", root / "config" / "secret.yaml")
        os.symlink(outside, root / "data" / "models")  # a folder link leading out
        os.symlink("/etc/passwd", root / "config" / "passwd.yaml")
        os.symlink(root / "data" / "real.yaml", root / "config" / "alias.yaml")  # stays inside
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"no symlinks here: {exc}")
    for rel in ("config/secret.yaml", "data/models/secret.txt", "config/passwd.yaml"):
        value = f"package://kairos_ros/{rel}"
        with pytest.raises(ValueError, match="outside the kairos_ros package") as exc:
            copy.resolve_resource(value, WHAT)
        assert str(exc.value).startswith(f"{WHAT} = {value!r}: resolves to ")
        assert "absolute path" in str(exc.value)  # says how to use a file kept elsewhere
        with pytest.raises(ValueError, match="outside the kairos_ros package"):
            copy.find_data(*rel.split("/"))
    # A link that stays inside the package, and plain files, still resolve (the real package too).
    path = resolve_resource(GOOD, WHAT)
    assert os.path.isfile(path) and path.endswith(os.path.join("config", "fastdds_large_frames.xml"))
    assert find_data("config", "fastdds_large_frames.xml") == path
    assert find_data("config/fastdds_large_frames.xml") == path  # a part may hold '/'
    assert find_data("config", "no_such_file.yaml") is None
    assert copy.resolve_resource("package://kairos_ros/config/alias.yaml", WHAT) == str(root / "config" / "alias.yaml")
    assert copy.find_data("data", "real.yaml") == str(root / "data" / "real.yaml")
