"""The broker's settings (`[amqp]`), kept with the bus so that the bus imports nothing above
it: service/settings.py composes them into Settings (and validates them there), as it
composes each platform's settings from its package.

It must import nothing but service.config (the field helper) and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from service.config import setting


@dataclass(frozen=True)
class AmqpSettings:
    url: str = setting(
        "amqp://guest:guest@127.0.0.1:5672/",
        "the password never appears in logs; several nodes of a cluster: comma-separated "
        "URLs, tried in turn",
        env="AMQP_URL",
        secret=True,
    )
    exchange: str = setting(
        "events", "durable topic exchange the events go to", env="AMQP_EXCHANGE"
    )
    queue: str = setting(
        "bridge.worker", 'durable work queue of the worker, bound with "#"', env="AMQP_QUEUE"
    )
    queue_type: str = setting("quorum", "quorum or classic")
    delivery_limit: int = setting(20, "quorum queues: redeliveries before the broker dead-letters")
    connect_retry_s: float = setting(2.0, "pause between attempts to reach the broker")
    publisher: str = setting(
        "fast", "fast (hand-encoded, batched; only on a proven aiormq) or aio-pika"
    )

    @property
    def urls(self) -> tuple[str, ...]:
        """The broker URLs, one per cluster node, in the order they are tried."""
        return split_urls(self.url)

    @property
    def safe_url(self) -> str:
        """The broker URL(s) with any password masked, for logs."""
        return ",".join(redact_url(url) for url in self.urls)

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dead"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


def split_urls(urls: str) -> tuple[str, ...]:
    """The URLs of a comma-separated list (a comma inside one is written %2C)."""
    return tuple(url.strip() for url in urls.split(",") if url.strip())


def redact_url(url: str) -> str:
    """Mask the password of a URL, whatever its characters.

    A URL whose user information does not parse cleanly (a raw `#`, `/` or `?` in the
    password ends the authority early) has everything between `user:` and its last `@`
    masked, so no part of a password survives however the URL is written.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_raw(url)
    if "@" not in parts.netloc:
        return _redact_raw(url)  # no password, unless its "@" is beyond a raw "#", "/" or "?"
    if "@" in url[url.index(parts.netloc) + len(parts.netloc) :]:
        return _redact_raw(url)  # an "@" after the authority: part of the password may be there
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if colon else parts.netloc))


def _redact_raw(url: str) -> str:
    """Mask from after `user:` up to the URL's last `@` (there is no password without one)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    userinfo, _, after = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}{separator}{user}:***@{after}"
