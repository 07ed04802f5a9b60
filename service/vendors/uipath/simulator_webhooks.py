"""The UiPath simulator's webhook CRUD by id: GET, PUT and DELETE /odata/Webhooks({key}).

List and create live in simulator.py (the lab configures webhooks through them). A read
never gives the Secret back: whether Orchestrator does is not published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from service.simulators.base import json_response

if TYPE_CHECKING:
    from service.vendors.uipath.simulator import UipathSimulator, Webhook


def add_routes(sim: UipathSimulator, app: web.Application, base: str) -> None:
    """Serve one webhook by its Id under `base` (…/orchestrator_/odata)."""

    async def get(request: web.Request) -> web.Response:
        sim.authorize_webhooks(request, write=False)
        return json_response(_hook(sim, request).dto())

    async def put(request: web.Request) -> web.Response:
        sim.authorize_webhooks(request, write=True)
        hook = _hook(sim, request)
        sim.update_webhook(hook, await sim.webhook_body(request))
        return json_response(hook.dto())

    async def delete(request: web.Request) -> web.Response:
        sim.authorize_webhooks(request, write=True)
        sim.webhooks.remove(_hook(sim, request))
        return web.Response(status=204)

    path = f"{base}/Webhooks({{key}})"
    app.router.add_get(path, get)
    app.router.add_put(path, put)
    app.router.add_delete(path, delete)


def _hook(sim: UipathSimulator, request: web.Request) -> Webhook:
    key = request.match_info["key"]
    for hook in sim.webhooks:
        if str(hook.id) == key:
            return hook
    raise web.HTTPNotFound(
        text='{"message":"Webhook does not exist.","errorCode":1002}',
        content_type="application/json",
    )
