"""The service's exceptions, and what each one tells its catcher to do.

    ServiceError
    ├── ConfigError            a setting is missing or wrong: fix the named key, start again
    ├── InputError             a request cannot be accepted: answer 4xx, publish nothing
    │   ├── Unauthorized       401: missing or wrong credentials
    │   ├── SourceDisabled     404: the source has no credential configured
    │   ├── PayloadTooLarge    413: body over the size limit
    │   ├── BodyTimeout        408: the body did not arrive in time
    │   ├── ClientAborted      (499) the sender hung up mid-body: nobody to answer, log at info
    │   ├── UnsupportedMedia   415: not a JSON content type
    │   ├── MalformedEvent     400: not JSON, or JSON that cannot be an event (or a bad query)
    │   ├── NotFound           404: the admin API has no such object
    │   └── Unavailable        503: the admin API cannot reach the broker now: retry later
    ├── BrokerUnavailable      the broker did not confirm: answer 503 + Retry-After, retry later
    ├── Overloaded             the receiver holds all the bodies it may: 503 + Retry-After, unread
    └── HandlerError           raised by handlers to say how to settle the message
        ├── RetryLater         transient: try the event again later
        │   └── VendorUnavailable   a vendor API: connection error, timeout, 5xx, 429
        └── RejectEvent        permanent: dead-letter the event now with the reason
            └── VendorRejected      a vendor API: another 4xx, a GraphQL validation error
                └── VendorRedirected   a 3xx: never followed (it would carry our credentials)

Clients raise only VendorUnavailable / VendorRejected: aiohttp's exceptions never leave
a client.

Handlers may raise any exception; anything that is not a HandlerError is treated as
permanent (dead-lettered with its text), never requeued in a hot loop.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error this service raises on purpose."""


class ConfigError(ServiceError):
    """A setting is missing or invalid; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"invalid setting {key!r}: {problem}")
        self.key = key
        self.problem = problem


class InputError(ServiceError):
    """A request that must be refused with a 4xx and nothing published."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(InputError):
    status = 401
    title = "Unauthorized"


class SourceDisabled(InputError):
    status = 404
    title = "Source not enabled"


class PayloadTooLarge(InputError):
    status = 413
    title = "Payload too large"


class BodyTimeout(InputError):
    status = 408
    title = "Request timeout"


class ClientAborted(InputError):
    """The client closed the connection before its body was read: nothing to answer."""

    status = 499  # nginx's "client closed request": a label for the access log, never sent
    title = "Client closed request"


class UnsupportedMedia(InputError):
    status = 415
    title = "Unsupported media type"


class MalformedEvent(InputError):
    status = 400
    title = "Malformed event"


class NotFound(InputError):
    status = 404
    title = "Not found"


class Unavailable(InputError):
    status = 503
    title = "Unavailable"


class BrokerUnavailable(ServiceError):
    """The event could not be durably stored; the sender should retry later."""


class Overloaded(ServiceError):
    """Taking this request would hold more body bytes than allowed; retry later."""


class HandlerError(ServiceError):
    """Raised by a handler to choose how its message is settled."""


class RetryLater(HandlerError):
    """The failure is transient: the event should be tried again later."""


class RejectEvent(HandlerError):
    """The event can never succeed: dead-letter it with this reason."""


class VendorUnavailable(RetryLater):
    """A vendor API could not be reached or is overloaded; the call may succeed later."""

    def __init__(self, vendor: str, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{vendor}: {detail}")
        self.vendor = vendor
        self.retry_after_s = retry_after_s


class VendorRejected(RejectEvent):
    """A vendor API refused the call for good (bad input, missing object, no permission)."""

    def __init__(self, vendor: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"{vendor}: {detail}")
        self.vendor = vendor
        self.status = status


class VendorRedirected(VendorRejected):
    """A vendor API answered with a redirect, which is not followed: following it would
    send our credentials to whatever the Location names. Fix the configured URL."""

    def __init__(self, vendor: str, detail: str, status: int, location: str | None) -> None:
        super().__init__(vendor, detail, status=status)
        self.location = location  # scheme://host[:port]/path of the target; None if unreadable
