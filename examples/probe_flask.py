"""The probe mounted in a Flask app under /probe (README, "Finding the hop that buffers").

    gunicorn --worker-class gthread --threads 8 probe_flask:app
    python -m conformance http://HOST/probe/sse/10 --reference http://127.0.0.1:8000/probe/sse/10
"""
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from conformance.probe import wsgi_app as probe

app = Flask(__name__)


@app.get("/")
def index():
    return "the app; the probe is under /probe/"


app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/probe": probe})
