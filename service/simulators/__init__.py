"""Faithful local simulators of the vendor APIs, as small aiohttp apps.

They follow the documented behaviour (../shared/reference): auth, status codes, 429 with
Retry-After, and they inject faults on demand: latency, 5xx, 429, hangs, dropped
callbacks. The end-to-end tests and `make demo` drive the real clients against them;
use them to develop handlers offline.
"""
