"""Switches of the test bed: how one region differs from a stock deployment.

Field reports (issue 23) come from clouds whose Glance is configured
differently: quotas in ``glance-api.conf``, a ``policy.yaml`` that forbids
the direct upload, a ``schema-image.json`` that restricts property values,
a catalog with two image endpoints for one region. A :class:`RegionSettings`
says all of that for one region; the bed applies it when it starts
(``TestBed.start(region_settings=...)``) or by restarting that region
(``TestBed.reconfigure_region``).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from glancesync.testbed.errors import TestBedError

#: What a region's second image endpoint is: a loopback port nobody serves
#: (connections refused), or a second glance-api process of the same region
#: (same configuration, database and store, its own port).
SECOND_ENDPOINTS = ("dead", "process")


@dataclasses.dataclass(frozen=True)
class RegionSettings:
    """One region's deviations from the bed's stock Glance (all optional).

    ``glance_conf``: section -> option -> value, added to or overriding the
    region's ``glance-api.conf`` (values as oslo.config reads them, e.g.
    ``{"DEFAULT": {"image_property_quota": "3"}}``).
    ``policy``: rule name -> check string, written as the region's
    ``policy.yaml`` (``[oslo_policy] policy_file``), e.g.
    ``{"upload_image": "!"}``; rules not named keep Glance's defaults.
    ``schema_image``: the content of the region's ``schema-image.json``
    (Glance's custom image properties: flat ``{name: json-schema}`` or
    ``{"properties": {...}, "required": [...]}``).
    ``second_endpoint``: one of :data:`SECOND_ENDPOINTS`, a second public
    image endpoint of the region in its Keystone's catalog, listed after the
    region's own, or before it with ``second_endpoint_first``.
    """

    glance_conf: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    policy: Mapping[str, str] | None = None
    schema_image: Mapping[str, Any] | None = None
    second_endpoint: str | None = None
    second_endpoint_first: bool = False

    def __post_init__(self) -> None:
        if self.second_endpoint not in (None, *SECOND_ENDPOINTS):
            raise TestBedError(f"second_endpoint must be one of {', '.join(SECOND_ENDPOINTS)} "
                               f"or None, not {self.second_endpoint!r}")
        if self.second_endpoint_first and not self.second_endpoint:
            raise TestBedError("second_endpoint_first needs a second_endpoint")
        for section, options in self.glance_conf.items():
            if not isinstance(options, Mapping):
                raise TestBedError(f"glance_conf[{section!r}] must map options to values")
            for key, value in options.items():
                if "\n" in f"{section}{key}{value}":
                    raise TestBedError(f"glance_conf[{section!r}][{key!r}]: no newlines")
        for rule, check in (self.policy or {}).items():
            if not isinstance(check, str) or "\n" in f"{rule}{check}":
                raise TestBedError(f"policy rule {rule!r}: a one-line check string")

    @property
    def is_stock(self) -> bool:
        """True when the region is configured like every other."""
        return self == RegionSettings()

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (kept in the bed's state.json)."""
        return {"glance_conf": {section: dict(options)
                                for section, options in self.glance_conf.items()},
                "policy": dict(self.policy) if self.policy is not None else None,
                "schema_image": self.schema_image,
                "second_endpoint": self.second_endpoint,
                "second_endpoint_first": self.second_endpoint_first}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RegionSettings:
        """The inverse of :meth:`to_json` (None or {} are stock settings)."""
        if not data:
            return cls()
        return cls(glance_conf=data.get("glance_conf") or {}, policy=data.get("policy"),
                   schema_image=data.get("schema_image"),
                   second_endpoint=data.get("second_endpoint"),
                   second_endpoint_first=bool(data.get("second_endpoint_first")))


def policy_yaml(rules: Mapping[str, str]) -> str:
    """policy.yaml text (JSON strings are valid YAML scalars: no quoting surprises)."""
    return "".join(f"{json.dumps(rule)}: {json.dumps(check)}\n"
                   for rule, check in rules.items()) or "{}\n"
