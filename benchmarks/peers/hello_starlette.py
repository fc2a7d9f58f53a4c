"""Peer: the plain Starlette hello-world endpoint, the ceiling for any Starlette-based server.

Run under the same uvicorn settings as the model server (uvloop, httptools, no access log) so
the ratio measures the model server's own overhead.
"""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request):
    return JSONResponse({"hello": "world"})


async def ready(request):
    return JSONResponse({"ready": True})


app = Starlette(routes=[Route("/", hello), Route("/ready", ready)])
