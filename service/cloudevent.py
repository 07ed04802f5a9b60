"""The CloudEvent on the bus: CloudEvents 1.0, structured JSON mode.

The sender's payload goes into `data` byte for byte: the envelope is serialised without
it and the raw body is spliced in, so a 20 MB LeanIX snapshot is never re-encoded and
`data` is exactly what the sender signed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

CONTENT_TYPE = "application/cloudevents+json"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:leanix-bridge:event")
_ENVELOPE = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype")


def event_id(origin: str, sender_id: str | None, body: bytes) -> str:
    """A stable id: the same sender event (or, lacking an id, the same body) gives the same id."""
    key = sender_id if sender_id is not None else "sha256:" + hashlib.sha256(body).hexdigest()
    return _uuid5(f"{origin}/{key}")


def _uuid5(name: str) -> str:
    """uuid.uuid5(_NAMESPACE, name), without the UUID object round trips (hot path)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE.bytes + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class CloudEvent:
    id: str
    source: str
    type: str
    time: str
    subject: str | None = None
    data: Any = None
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def routing_key(self) -> str:
        return self.type

    def attributes(self) -> dict[str, Any]:
        """Every context attribute (no data), as they appear on the wire."""
        attrs: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        if self.subject is not None:
            attrs["subject"] = self.subject
        attrs["time"] = self.time
        attrs["datacontenttype"] = "application/json"
        attrs.update(self.extensions)
        return attrs


def encode(event: CloudEvent, raw_data: bytes | None = None) -> bytes:
    """Serialise; `raw_data`, when given, is valid JSON spliced in as `data` unchanged."""
    if raw_data is None:
        return orjson.dumps({**event.attributes(), "data": event.data})
    head = orjson.dumps(event.attributes())
    return b"".join((head[:-1], b',"data":', raw_data.strip(), b"}"))


def decode(body: bytes) -> CloudEvent:
    """Parse a structured-mode CloudEvent; ValueError if it is not one."""
    return from_document(orjson.loads(body))


def from_document(doc: Any) -> CloudEvent:
    """The CloudEvent of a parsed structured-mode document; ValueError if it is not one."""
    if not isinstance(doc, dict) or doc.get("specversion") != "1.0":
        raise ValueError("not a CloudEvents 1.0 structured-mode event")
    for name in ("id", "source", "type"):
        if not isinstance(doc.get(name), str):
            raise ValueError(f"CloudEvent attribute {name!r} is missing")
    extensions = {k: v for k, v in doc.items() if k not in _ENVELOPE and k != "data"}
    return CloudEvent(
        id=doc["id"],
        source=doc["source"],
        type=doc["type"],
        time=doc.get("time", ""),
        subject=doc.get("subject"),
        data=doc.get("data"),
        extensions=extensions,
    )
