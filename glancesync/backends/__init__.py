"""The registry of region backends: a target's ``type`` -> its :class:`Backend`.

As rclone's backends do, each backend is a package that describes itself
(its options, which are secret, how its settings are read, how its target
is made: :class:`~glancesync.backends.base.Backend`) and is registered
here by one line. The configuration, the facade and the engine look a
backend up by the ``type`` of a target section and never switch on its name.
Adding a backend: a package, one :func:`register` line, its docs.
"""
from __future__ import annotations

from glancesync.backends import local, openstack
from glancesync.backends.base import Backend, RegionAdapter, Target

__all__ = ["Backend", "RegionAdapter", "Target", "get_backend", "names", "register",
           "registered", "unregister"]

_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Make ``backend`` available as ``type = <backend.name>``; returns it.

    :raises ValueError: another backend has that name already.
    """
    known = _REGISTRY.get(backend.name)
    if known is not None and known is not backend:
        raise ValueError(f"a region backend named {backend.name!r} is registered already")
    _REGISTRY[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    """Forget the backend called ``name`` (tests register theirs for a while)."""
    _REGISTRY.pop(name, None)


def get_backend(name: str) -> Backend:
    """The backend of ``type = name``.

    :raises KeyError: no backend has that name (the configuration refuses
        such a ``type`` before anything asks).
    """
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """The ``type`` names, in registration order (the built-ins first)."""
    return tuple(_REGISTRY)


def registered() -> tuple[Backend, ...]:
    """Every backend, in registration order."""
    return tuple(_REGISTRY.values())


# The built-in backends.
register(openstack.BACKEND)
register(local.BACKEND)
