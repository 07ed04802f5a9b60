"""PULL delivery: LeanIX webhook events fetched instead of received, so no inbound port.

    lease (store) -> fetch a batch (long poll) -> per event: normalise -> CloudEvent ->
    persistent publish -> confirm (service/receiver/ingest.py, as for a PUSH) -> commit
    the cursor once every event of the batch is confirmed

One puller per workspace (its own token, URL and lease), pulling the PULL subscription
`subscriptions apply` made there, found by its identifier (or a configured id).
A crash between publish and commit re-fetches the batch: each event gets the CloudEvent id
it got the first time (and would get if pushed), so the worker handles it once.
"""
