"""Vendor API clients. Each takes the process's one aiohttp session and its settings,
bounds every call with a timeout, and translates failures at its boundary into
VendorUnavailable (retry later) or VendorRejected (don't)."""
