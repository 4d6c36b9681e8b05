"""Parameter schemas (docs/architecture.md, convention 2): one list of ParamSpec per node, validated at start-up.

Independent of rclpy: nodes/common.py declares ROS parameters from the same specs (ros_type_name
gives the ParameterType), and the config tests validate the YAML files through them.

Type rules follow ROS 2 parameter typing: an int is accepted for a float (and converted), never
the reverse; a bool is never a number; arrays hold one type. Range (min/max) and choices apply to
every element of an array. A None value means "not given": the default is used.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import yaml

_TYPES = {"bool": "bool", "int": "integer", "float": "double", "str": "string",
          "str_array": "string_array", "float_array": "double_array", "int_array": "integer_array"}
# other spellings accepted for ParamSpec.type; they are normalised to the keys of _TYPES
_ALIASES = {bool: "bool", int: "int", float: "float", str: "str", list[str]: "str_array",
            list[float]: "float_array", list[int]: "int_array", "double_array": "float_array"}


class ParameterError(ValueError):
    """A parameter value that the node refuses; the message names the parameter and the value."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # bool, int, float, str, str_array, float_array, int_array (or bool, list[float], ...)
    default: Any
    description: str
    choices: tuple | list | None = None
    min: float | None = None
    max: float | None = None
    read_only: bool = False
    required: bool = False

    def __post_init__(self):
        kind = self.type if isinstance(self.type, str) and self.type in _TYPES else _ALIASES.get(self.type)
        if kind is None:
            shown = self.type if isinstance(self.type, str) else repr(self.type)
            raise ValueError(f"parameter '{self.name}': unknown type '{shown}' (one of {sorted(_TYPES)})")
        object.__setattr__(self, "type", kind)


def ros_type_name(spec: ParamSpec) -> str:
    """'bool', 'integer', 'double', 'string', 'string_array', 'double_array' or 'integer_array'."""
    return _TYPES[spec.type]


def _type_problem(value, kind: str) -> str | None:
    """What is wrong with one scalar for type `kind`, or None."""
    if kind == "bool":
        return None if isinstance(value, bool) else "must be a bool"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be finite"
    return None if isinstance(value, str) else "must be a string"


def _range_problem(spec: ParamSpec, item) -> str | None:
    if spec.choices is not None and item not in spec.choices:
        return f"must be one of {list(spec.choices)}"
    if spec.min is not None and item < spec.min:
        return f"is out of range: must be >= {spec.min}"
    if spec.max is not None and item > spec.max:
        return f"is out of range: must be <= {spec.max}"
    return None


def _check_value(spec: ParamSpec, value):
    """The value converted to the spec's type (int -> float, tuple -> list) or ParameterError."""
    if not spec.type.endswith("_array"):
        problem = _type_problem(value, spec.type) or _range_problem(spec, value)
        if problem:
            raise ParameterError(f"parameter '{spec.name}' = {value!r} {problem}")
        return float(value) if spec.type == "float" else value
    if not isinstance(value, (list, tuple)):
        raise ParameterError(f"parameter '{spec.name}' = {value!r} must be a list")
    kind = spec.type[:-6]
    for i, item in enumerate(value):
        problem = _type_problem(item, kind) or _range_problem(spec, item)
        if problem:
            raise ParameterError(f"parameter '{spec.name}' = {list(value)!r} {problem} (element {i} = {item!r})")
    return [float(v) for v in value] if kind == "float" else list(value)


def _is_empty(value) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and len(value) == 0)


def validate_params(schema: list[ParamSpec], values: dict) -> dict:
    """All parameters of the schema, defaults filled in; raises ParameterError on any bad value,
    an unknown name, a missing required one, or a schema default that breaks its own rules."""
    known = {spec.name: spec for spec in schema}
    if len(known) != len(schema):
        dupes = sorted({s.name for s in schema if sum(t.name == s.name for t in schema) > 1})
        raise ParameterError(f"schema declares parameters more than once: {dupes}")
    for name in values:
        if name not in known:
            near = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ParameterError(f"unknown parameter '{name}' (known: {sorted(known)}){hint}")
    out = {}
    for spec in schema:
        given = values.get(spec.name)
        value = spec.default if given is None else given
        if spec.required and _is_empty(value):
            raise ParameterError(f"parameter '{spec.name}' is required ({spec.description})")
        if value is None:
            out[spec.name] = None
            continue
        try:
            out[spec.name] = _check_value(spec, value)
        except ParameterError as exc:
            if given is None:  # a schema bug, not a user error: say so
                raise ParameterError(f"{exc} (the schema default)") from exc
            raise
    return out


def _name_matches(key: str, node_name: str) -> bool:
    """ROS 2 parameter-file node keys: '/ns/node', 'node', '/**', '/**/node', '/ns/*'. A bare
    node_name (no '/') matches in any namespace; a fully qualified one must match the key."""
    pattern = [t for t in str(key).split("/") if t]
    if not pattern:
        return False
    if "/" not in node_name.strip("/"):
        last = pattern[-1]
        return last in ("*", "**", node_name.strip("/")) or pattern == ["**"]
    target = [t for t in node_name.split("/") if t]

    def match(p: list[str], t: list[str]) -> bool:
        if not p:
            return not t
        if p[0] == "**":
            return any(match(p[1:], t[i:]) for i in range(len(t) + 1))
        return bool(t) and p[0] in ("*", t[0]) and match(p[1:], t[1:])

    return match(pattern, target) or (len(pattern) == 1 and pattern[0] == target[-1])


def load_ros_params_yaml(path: str, node_name: str) -> dict:
    """One node's parameters from a ROS 2 parameter file (`node: {ros__parameters: {...}}`;
    wildcards and namespaces allowed; later sections override earlier ones, in file order).
    Nested mappings flatten to dotted names, as ROS does."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ParameterError(f"cannot read parameter file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: not a ROS 2 parameter file (top level is {type(data).__name__})")
    out: dict = {}
    for key, section in data.items():
        if not _name_matches(str(key), node_name):
            continue
        params = section.get("ros__parameters") if isinstance(section, dict) else None
        if not isinstance(params, dict):
            raise ParameterError(f"{path}: section '{key}' has no 'ros__parameters' mapping")
        out.update(_flatten(params))
    return out


def _flatten(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def schema_markdown(schema: list[ParamSpec]) -> str:
    """A Markdown table: name, type, default, range / choices, description."""
    lines = ["| name | type | default | range / choices | description |", "|---|---|---|---|---|"]
    for spec in schema:
        limits = []
        if spec.choices is not None:
            limits.append(", ".join(f"`{c}`" for c in spec.choices))
        if spec.min is not None or spec.max is not None:
            limits.append(f"[{'' if spec.min is None else spec.min}, {'' if spec.max is None else spec.max}]")
        default = "(required)" if spec.required else f"`{spec.default!r}`"
        ro = " Read-only." if spec.read_only else ""
        lines.append(f"| `{spec.name}` | {spec.type} | {_cell(default)} | {_cell('; '.join(limits))} | "
                     f"{_cell(spec.description)}{ro} |")
    return "\n".join(lines) + "\n"
