"""The probe mounted in a FastAPI app under /probe (README, "Finding the hop that buffers").

    uvicorn probe_fastapi:app
"""
from fastapi import FastAPI

from conformance.probe import asgi_app as probe

app = FastAPI()


@app.get("/")
def index():
    return {"probe": "/probe/sse/10"}


app.mount("/probe", probe)
