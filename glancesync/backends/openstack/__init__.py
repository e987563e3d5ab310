"""The OpenStack region backend (``type = keystone``, the default).

A target is one Keystone (:mod:`.keystone`): its regions are the image
endpoints of its service catalog, each served by a Glance v2 adapter on the
target's keystoneauth1 session (:mod:`.glance`). Its options and how they
are read: :mod:`.settings`. keystoneauth1 and glanceclient are imported
only when a target is made.
"""
from __future__ import annotations

from glancesync.backends.base import Backend, Target, TargetSpec
from glancesync.backends.openstack.settings import OPTIONS, read_settings

__all__ = ["BACKEND"]


def _make_target(spec: TargetSpec) -> Target:
    from glancesync.backends.openstack.keystone import KeystoneTarget
    return KeystoneTarget(spec)


BACKEND = Backend(name="keystone", options=OPTIONS, settings=read_settings,
                  make_target=_make_target,
                  description="regions registered in a Keystone catalog, served by Glance")
