"""Checks of the bringup arguments, shared by bringup.launch.py and kairos-bringup so that both
refuse the same values with the same message, each naming the argument and the value.

A launch argument is a string (`rate:=abc`, `visualize:=maybe`): a bare float() or a "true or
anything else" reading gave messages without the argument's name, or read a typo as false.
"""
from __future__ import annotations

import difflib
import math

import yaml

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.params import _name_matches

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")
# The node names of the graph (kairos_ros.bringup.graph): the sections a bringup profile may have.
NODE_NAMES = ("perception", "world_model", "adapter", "visualizer")


def parse_bool(name: str, text) -> bool:
    """true/false (also 1/0, yes/no, on/off, any case); anything else is refused, naming `name`."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{name}:={text!r} is not a boolean: use true or false")


def parse_rate(text, name: str = "rate") -> float:
    """A replay rate factor: a finite number > 0."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name}:={text!r} is not a number (a replay rate factor > 0, e.g. 1.0)") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}:={text!r} must be a number > 0 (a replay rate factor, e.g. 1.0)")
    return value


def check_embodiment(embodiment: str):
    """The robot the name (or alias, or adapter.yaml path) loads; an unknown one is refused with
    the list of the known robots and aliases (core.embodiment's message)."""
    if not embodiment:
        raise ValueError("embodiment:= must be given")
    try:
        return load_embodiment(embodiment)
    except ValueError as exc:
        raise ValueError(f"embodiment:={embodiment!r}: {exc}") from None


def check_profile_sections(path: str, known=NODE_NAMES) -> None:
    """Every top-level section of a bringup profile (a ROS 2 parameter file) must be for a node of
    the graph: ROS itself ignores a section that matches no node, so a misspelt `adaptr:` left the
    adapter on its defaults without a word. Wildcard and namespaced keys ('/**', '/ns/adapter')
    are accepted when they match a node. Raises ValueError naming the file, the section, the
    closest node name and the known ones."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ValueError(f"config:={path}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"config:={path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config:={path}: not a ROS 2 parameter file (top level is {type(data).__name__}, "
                         f"expected one section per node: {', '.join(known)})")
    for key in data:
        if any(_name_matches(str(key), name) for name in known):
            continue
        last = [t for t in str(key).split("/") if t]
        close = difflib.get_close_matches(last[-1] if last else str(key), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"config:={path}: section '{key}' is not a node of the graph{hint}; "
                         f"the nodes are {', '.join(known)}")
