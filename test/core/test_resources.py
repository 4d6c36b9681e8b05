"""package://kairos_ros/... resources resolve to the bundled files, and a missing one is named."""
import os

import pytest

from kairos_ros.core.paths import resolve_resource


def test_packaged_file_resolves():
    path = resolve_resource("package://kairos_ros/config/fastdds_large_frames.xml", "parameter 'x'")
    assert os.path.isfile(path) and path.endswith(os.path.join("config", "fastdds_large_frames.xml"))


def test_plain_paths_are_unchanged():
    assert resolve_resource("/models/dit.safetensors", "p") == "/models/dit.safetensors"
    assert resolve_resource("", "p") == ""


@pytest.mark.parametrize("value, message", [
    ("package://kairos_ros/data/no_such_model.safetensors", "no such file in the kairos_ros package"),
    ("package://other_pkg/x.yaml", "only package://kairos_ros/... resources"),
    ("package://kairos_ros/", "no such file")])
def test_bad_resources_are_named(value, message):
    with pytest.raises(ValueError, match=message) as exc:
        resolve_resource(value, "parameter 'dit_checkpoint'")
    assert f"parameter 'dit_checkpoint' = '{value}'" in str(exc.value)
