"""Reading a notification of the master Glance as a hint (issue 24).

A notification is a hint, never the truth: only its event type and the
id of the image it names are read, and the image is read again from the
master API before anything is done. Everything else in the payload is
ignored (it may be forged, malformed or huge). Glance's event types and
payloads: ``glance/notifier.py`` (image events carry the image as
``payload['id']``, member events ``payload['image_id']``), see
https://docs.openstack.org/glance/latest/admin/notifications.html .
"""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any

#: Event types after which the master image may differ from its copies.
ACTED_EVENTS = frozenset({
    "image.activate", "image.update", "image.delete", "image.deactivate",
    "image.reactivate", "image.member.create", "image.member.update",
    "image.member.delete",
})
#: Event types of Glance that change nothing a sync copies (an image being
#: made: it is acted on at ``image.activate``; a download).
QUIET_EVENTS = frozenset({"image.create", "image.prepare", "image.upload", "image.send"})
#: The longest event type shown in a log line or used as a label.
MAX_EVENT_TYPE = 64


@dataclasses.dataclass(frozen=True)
class Hint:
    """What an event says: ``image_id`` (a canonical UUID) may have changed.

    ``activation``: the event is ``image.activate`` (the start of the
    propagation lag).
    """

    event_type: str
    image_id: str
    activation: bool = False


class Ignored(Exception):
    """A notification that is not acted on; ``reason`` is a short, fixed label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_notification(event_type: Any, payload: Any) -> Hint:
    """The hint of one notification.

    :raises Ignored: ``reason`` ``quiet`` (an event that changes nothing a
        sync copies), ``unknown_event`` (an unknown or malformed event
        type), ``malformed_payload`` (no mapping), ``bad_image_id`` (a
        missing id, or not a UUID).
    """
    if not isinstance(event_type, str) or len(event_type) > MAX_EVENT_TYPE:
        raise Ignored("unknown_event")
    if event_type in QUIET_EVENTS:
        raise Ignored("quiet")
    if event_type not in ACTED_EVENTS:
        raise Ignored("unknown_event")
    if not isinstance(payload, dict):
        raise Ignored("malformed_payload")
    key = "image_id" if event_type.startswith("image.member.") else "id"
    image_id = canonical_uuid(payload.get(key))
    if image_id is None:
        raise Ignored("bad_image_id")
    return Hint(event_type, image_id, activation=event_type == "image.activate")


def canonical_uuid(value: Any) -> str | None:
    """``value`` as Glance writes image ids (lower-case, hyphenated UUID), or None."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    text = str(parsed)
    return text if text == value.lower() else None


def event_label(event_type: Any) -> str:
    """A bounded label for an event type: a known one, or ``other``."""
    if isinstance(event_type, str) and (event_type in ACTED_EVENTS or event_type in QUIET_EVENTS):
        return event_type
    return "other"
