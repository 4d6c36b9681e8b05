"""Backend registry: make_backend(name, spec, **params)."""
from __future__ import annotations

from kairos_ros.backends.base import Backend
from kairos_ros.backends.baselines import ExtrapolateBackend, HoldBackend

BACKENDS = {"hold": HoldBackend, "extrapolate": ExtrapolateBackend}


def _kairos(spec, **params):
    """The learned world-action model (imports torch only when chosen)."""
    from kairos_ros.backends.kairos_backend import KairosBackend
    from kairos_ros.model.checkpoint import CheckpointError

    try:
        return KairosBackend(spec, **params)
    except TypeError as exc:
        raise ValueError(f"backend 'kairos': bad parameters {sorted(params)}: {exc}") from exc
    except CheckpointError as exc:
        raise ValueError(str(exc)) from exc


def _remote(spec, **params):
    from kairos_ros.backends.remote_backend import RemoteBackend

    try:
        return RemoteBackend(spec, **params)
    except TypeError as exc:
        raise ValueError(f"backend 'remote': bad parameters {sorted(params)}: {exc}") from exc


def make_backend(name: str, spec, **params) -> Backend:
    if name == "kairos":
        return _kairos(spec, **params)
    if name == "official":  # the official Kairos service over its pickle protocol (backends/official_backend.py)
        from kairos_ros.backends.official_backend import make_official
        return make_official(spec, **params)
    if name == "remote":  # a world model served by kairos-serve (backends/remote_backend.py)
        return _remote(spec, **params)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}' (known: {sorted([*BACKENDS, 'kairos', 'remote'])})")
    try:
        return BACKENDS[name](spec, **params)
    except TypeError as exc:
        raise ValueError(f"backend '{name}': bad parameters {sorted(params)}: {exc}") from exc


__all__ = ["Backend", "BACKENDS", "make_backend"]
