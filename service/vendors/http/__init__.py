"""The `http` platform: start a run by calling any HTTPS endpoint a rule names (Power
Automate HTTP-triggered flows, n8n, Jenkins, GitHub workflow_dispatch, in-house services);
learn its end from a Standard Webhooks-signed callback or by polling the status URL the
start answered.

    settings.py   [clients.http]: named credentials bound to hosts, callback secrets
    endpoint.py   a rule's start.target, checked at load; the URL built with event values
                  confined to its path and query
    client.py     the RunClient: start and status calls
    answer.py     start and status answers -> RunState
    callback.py   /callbacks/http: verification, normalisation, completion parsing
    simulator.py  a simulated endpoint for the tests and the lab
"""
