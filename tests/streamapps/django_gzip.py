"""The Django app of ``django_stream`` with Django's ``GZipMiddleware`` installed, as many projects
have it: it compresses the stream without flushing, so a browser's request gets it held."""
import os

os.environ["STREAMAPPS_GZIP"] = "1"

from streamapps.django_stream import application   # noqa: E402,F401
