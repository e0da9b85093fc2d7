"""Django in one file: ``/events`` is a ``StreamingHttpResponse`` of server-sent events. With
``STREAMAPPS_GZIP=1`` in the environment, Django's ``GZipMiddleware`` is installed (as many
projects have it), and it compresses the stream without flushing."""
import os
import time

from django.conf import settings

from streamapps import COUNT, INTERVAL, sse

if not settings.configured:
    settings.configure(
        DEBUG=False, SECRET_KEY="streamapps-only-for-tests", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.gzip.GZipMiddleware"] if os.environ.get("STREAMAPPS_GZIP") else [],
    )

from django.core.wsgi import get_wsgi_application   # noqa: E402 - after settings
from django.http import StreamingHttpResponse   # noqa: E402
from django.urls import path   # noqa: E402


def events(request):
    def generate():
        for n in range(COUNT):
            if n:
                time.sleep(INTERVAL)
            yield sse(n)
    return StreamingHttpResponse(generate(), content_type="text/event-stream")


urlpatterns = [path("events", events)]
application = get_wsgi_application()
