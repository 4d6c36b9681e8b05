"""Parameter schemas (design.md convention 2): one list of ParamSpec per node, validated at start-up.

Independent of rclpy: nodes/common.py declares ROS parameters from the same specs, and the config
tests validate the YAML files through them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml

_TYPES = {"bool": "bool", "int": "integer", "float": "double", "str": "string",
          "str_array": "string_array", "float_array": "double_array", "int_array": "integer_array"}


class ParameterError(ValueError):
    """A parameter value that the node refuses; the message names the parameter and the value."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # bool, int, float, str, str_array, float_array, int_array
    default: Any
    description: str
    choices: tuple | list | None = None
    min: float | None = None
    max: float | None = None
    read_only: bool = False
    required: bool = False

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"parameter '{self.name}': unknown type '{self.type}' (one of {sorted(_TYPES)})")


def ros_type_name(spec: ParamSpec) -> str:
    return _TYPES[spec.type]


def _check_scalar(spec: ParamSpec, value, kind: str):
    if kind == "bool":
        if not isinstance(value, bool):
            raise ParameterError(f"parameter '{spec.name}' = {value!r} must be a bool")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"parameter '{spec.name}' = {value!r} must be an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"parameter '{spec.name}' = {value!r} must be a number")
        if not math.isfinite(value):
            raise ParameterError(f"parameter '{spec.name}' = {value!r} must be finite")
        return float(value)
    if not isinstance(value, str):
        raise ParameterError(f"parameter '{spec.name}' = {value!r} must be a string")
    return value


def _check_value(spec: ParamSpec, value):
    if spec.type.endswith("_array"):
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"parameter '{spec.name}' = {value!r} must be a list")
        kind = spec.type[:-6]
        items = [_check_scalar(spec, v, kind) for v in value]
        for item in items:
            _check_range(spec, item, value)
        return items
    out = _check_scalar(spec, value, spec.type)
    _check_range(spec, out, value)
    return out


def _check_range(spec: ParamSpec, item, shown):
    if spec.choices is not None and item not in spec.choices:
        raise ParameterError(f"parameter '{spec.name}' = {shown!r} must be one of {list(spec.choices)}")
    if spec.min is not None and item < spec.min:
        raise ParameterError(f"parameter '{spec.name}' = {shown!r} is out of range: must be >= {spec.min}")
    if spec.max is not None and item > spec.max:
        raise ParameterError(f"parameter '{spec.name}' = {shown!r} is out of range: must be <= {spec.max}")


def validate_params(schema: list[ParamSpec], values: dict) -> dict:
    """All parameters of the schema, defaults filled in; raises ParameterError on any bad value."""
    known = {spec.name: spec for spec in schema}
    for name in values:
        if name not in known:
            raise ParameterError(f"unknown parameter '{name}' (known: {sorted(known)})")
    out = {}
    for spec in schema:
        if spec.name in values and values[spec.name] is not None:
            out[spec.name] = _check_value(spec, values[spec.name])
        else:
            out[spec.name] = list(spec.default) if isinstance(spec.default, (list, tuple)) else spec.default
        if spec.required and out[spec.name] in (None, "", []):
            raise ParameterError(f"parameter '{spec.name}' is required ({spec.description})")
    return out


def load_ros_params_yaml(path: str, node_name: str) -> dict:
    """One node's parameters from a ROS 2 parameter file (wildcards '/**' and namespaces allowed)."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: not a ROS 2 parameter file (top level is {type(data).__name__})")
    out: dict = {}
    for key, section in data.items():
        name = str(key).rstrip("/").split("/")[-1]
        if key in ("/**", "**") or name == node_name:
            params = (section or {}).get("ros__parameters") if isinstance(section, dict) else None
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


def schema_markdown(schema: list[ParamSpec]) -> str:
    lines = ["| name | type | default | range / choices | description |", "|---|---|---|---|---|"]
    for spec in schema:
        limits = []
        if spec.choices is not None:
            limits.append(", ".join(f"`{c}`" for c in spec.choices))
        if spec.min is not None or spec.max is not None:
            limits.append(f"[{'' if spec.min is None else spec.min}, {'' if spec.max is None else spec.max}]")
        default = "(required)" if spec.required else f"`{spec.default!r}`"
        ro = " Read-only." if spec.read_only else ""
        lines.append(f"| `{spec.name}` | {spec.type} | {default} | {'; '.join(limits)} | {spec.description}{ro} |")
    return "\n".join(lines) + "\n"
