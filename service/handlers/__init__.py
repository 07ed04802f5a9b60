"""Handlers that ship with the service. Name a module in `worker.handler_modules` to load it."""
