"""Application credential access rules: what a restricted token may call.

An application credential may carry access rules (Keystone, since Train):
each allows one ``method`` on a ``path`` of one ``service`` type, and a
token made from it is refused (HTTP 401) by every other call. The services
check the rules in keystonemiddleware's ``auth_token``, which can only do
so when its ``[keystone_authtoken]`` names the service's ``service_type``:
without it, every restricted token is refused. Keystone checks them for
its own API (service type ``identity``). These functions tell which of the
two a 401 means, so that the message names the rule or the setting.

Path templates (keystone's ``access_rules_config`` syntax): ``*`` matches
one path segment, ``**`` any number of them; the rest is literal.
Source: the Keystone documentation, "Application Credentials", section
"Access Rules".
"""
from __future__ import annotations

import re
import urllib.parse
from typing import Any, Iterable, Mapping

__all__ = ["allows", "describe", "restricted_rules"]


def restricted_rules(session: Any) -> list[Mapping[str, str]] | None:
    """The access rules of the session's token, or None when it has none.

    Asks nothing of Keystone: only a token already obtained is read.
    """
    auth = getattr(session, "auth", None)
    access = getattr(auth, "auth_ref", None)
    rules = getattr(access, "application_credential_access_rules", None)
    return list(rules) if rules else None


def _pattern(template: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\*\*|\*)", template.rstrip("/") or "/"):
        if piece == "**":
            parts.append(r".*")
        elif piece == "*":
            parts.append(r"[^/]+")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + r"/?")


def allows(rules: Iterable[Mapping[str, str]], service: str, method: str, path: str) -> bool:
    """True when one of ``rules`` allows ``method`` on ``path`` (query ignored)."""
    path = urllib.parse.urlsplit(path).path
    for rule in rules:
        if (str(rule.get("service", "")).lower() == service
                and str(rule.get("method", "")).upper() == method.upper()
                and _pattern(str(rule.get("path", ""))).fullmatch(path)):
            return True
    return False


def describe(rules: Iterable[Mapping[str, str]]) -> str:
    """``image GET /v2/images, identity GET /v3/projects/*`` (for messages)."""
    return ", ".join(f"{rule.get('service')} {rule.get('method')} {rule.get('path')}"
                     for rule in rules) or "none"
