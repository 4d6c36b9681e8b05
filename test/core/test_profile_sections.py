"""Bringup profiles (one ROS 2 parameter file, a section per node): a section for no node of the
graph is refused, naming it, the closest node name and the known ones (ROS ignores it silently)."""
import glob
import os

import pytest

from kairos_ros.bringup.args import NODE_NAMES, check_profile_sections, parse_bool, parse_rate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _profile(tmp_path, text: str) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "config", "*.yaml"))) +
                         [os.path.join(REPO, "test", "fixtures", "planar_arm", "profile.yaml")])
def test_bundled_profiles_pass(path):
    check_profile_sections(path)


@pytest.mark.parametrize("key", ["perception", "/world_model", "/**", "/**/adapter", "/robot/visualizer", "/robot/*"])
def test_wildcard_and_namespaced_sections_pass(tmp_path, key):
    check_profile_sections(_profile(tmp_path, f"{key}:\n  ros__parameters:\n    a: 1\n"))


def test_a_misspelt_section_is_refused_with_the_closest_node(tmp_path):
    path = _profile(tmp_path, "perception:\n  ros__parameters: {}\nadaptr:\n  ros__parameters:\n    dry_run: false\n")
    with pytest.raises(ValueError) as info:
        check_profile_sections(path)
    assert str(info.value) == (f"config:={path}: section 'adaptr' is not a node of the graph (did you mean "
                               f"'adapter'?); the nodes are {', '.join(NODE_NAMES)}")


def test_a_namespaced_misspelt_section_suggests_from_its_last_part(tmp_path):
    with pytest.raises(ValueError, match=r"section '/robot/wold_model' .*did you mean 'world_model'"):
        check_profile_sections(_profile(tmp_path, "/robot/wold_model:\n  ros__parameters: {}\n"))


def test_an_unrelated_section_lists_the_nodes_without_a_guess(tmp_path):
    with pytest.raises(ValueError) as info:
        check_profile_sections(_profile(tmp_path, "zzz:\n  ros__parameters: {}\n"))
    assert "did you mean" not in str(info.value) and "the nodes are perception" in str(info.value)


@pytest.mark.parametrize("text,message", [("- a\n- b\n", "not a ROS 2 parameter file"),
                                          ("a: [1,\n", "invalid YAML")])
def test_a_file_that_is_no_parameter_file_is_refused(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        check_profile_sections(_profile(tmp_path, text))


@pytest.mark.parametrize("text,value", [("true", True), ("False", False), (" yes ", True), ("0", False),
                                        ("ON", True)])
def test_parse_bool_reads_booleans(text, value):
    assert parse_bool("visualize", text) is value


@pytest.mark.parametrize("text", ["maybe", "", "2", "tru"])
def test_parse_bool_refuses_anything_else(text):
    with pytest.raises(ValueError, match=f"visualize:={text!r} is not a boolean"):
        parse_bool("visualize", text)


@pytest.mark.parametrize("text", ["abc", "0", "-1", "nan", "inf", ""])
def test_parse_rate_names_the_argument(text):
    with pytest.raises(ValueError, match=f"rate:={text!r}"):
        parse_rate(text)
    assert parse_rate("2.5") == 2.5
