"""GlanceSync configuration files for the loopback test bed.

``write_config(info, path)`` writes an INI file with a ``master`` target on
Keystone #1 (master region ``Master``) and an ``other`` target on Keystone
#2, with explicit credentials, so that the library and the scripts (run as
subprocesses) need no environment variables. Extra options per section can
be given as dicts; a value of ``None`` removes an option.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from glancesync.testbed import TestBedInfo

Options = Mapping[str, object]


def credentials(info: TestBedInfo, cloud: str) -> dict[str, str]:
    """The explicit credential options of a test bed cloud."""
    auth = info.auth(cloud)
    return {"auth_url": auth["auth_url"], "username": auth["username"],
            "password": auth["password"], "project_name": auth["project_name"],
            "user_domain_name": auth["user_domain_name"],
            "project_domain_name": auth["project_domain_name"]}


def write_config(info: TestBedInfo, path: Path, *, main: Options | None = None,
                 master: Options | None = None, other: Options | None = None,
                 master_cloud: str = "master-admin", other_cloud: str = "other-admin",
                 extra_sections: Mapping[str, Options] | None = None) -> Path:
    """Write a configuration for the bed at ``path`` (mode 600) and return it."""
    sections: dict[str, dict[str, object]] = {
        "main": {"master_region": "Master", "max_children": 3,
                 "cache_dir": path.parent / "cache", "run_dir": path.parent / "runs"},
        "master": credentials(info, master_cloud),
        "other": credentials(info, other_cloud),
    }
    for name, extra in (("main", main), ("master", master), ("other", other),
                        *(extra_sections or {}).items()):
        section = sections.setdefault(name, {})
        for key, value in (extra or {}).items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
    lines = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value}" for key, value in options.items())
        lines.append("")
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path
