"""Vendors: the automation platforms, one package each, listed in `registry.py`.

`adapter.py` says what a platform package provides (`Platform`) and which generic
toolkit it may use; `registry.py` lists the platforms, one line each. Adding a platform is
one new folder here plus one line in the registry. `signatures.py` and `runtoken.py` (the
verifiers) and `normalise.py` (the normaliser kit, LeanIX's normaliser too) are the toolkit
the receiver and every platform share: they live here so that no module of this package
imports `service.receiver`. LeanIX is the system of record, not a platform: its client and
webhook stay in `service/clients/` and `service/receiver/`.
"""
