"""Sources of the apps the launcher tests write into a server's working directory.

None imports the SDK except the two that add the middleware themselves on purpose.
"""

FLASK_APP = """\
from flask import Flask

app = Flask(__name__)


def tally(n):
    return sum(i * i for i in range(n))


@app.get("/orders/<int:order_id>")
def show(order_id):
    return {"id": order_id, "total": tally(200000)}
"""

FASTAPI_APP = """\
from fastapi import FastAPI

app = FastAPI()


def crunch(n):
    return sum(i % 7 for i in range(n))


@app.get("/items/{item_id}")
def read(item_id: int):
    return {"id": item_id, "value": crunch(300000)}
"""

FASTAPI_EXPLICIT_APP = """\
from fastapi import FastAPI
from performance_monitor.fastapi import PerformanceMiddleware

app = FastAPI()
app.add_middleware(PerformanceMiddleware)


@app.get("/items/{item_id}")
def read(item_id: int):
    return {"id": item_id}
"""

FLASK_EXPLICIT_APP = """\
from flask import Flask
from performance_monitor.flask import PerformanceMiddleware

app = Flask(__name__)
PerformanceMiddleware(app)


@app.get("/orders/<int:order_id>")
def show(order_id):
    return {"id": order_id}
"""

DJANGO_WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
application = get_wsgi_application()
"""

DJANGO_ASGI = """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
application = get_asgi_application()
"""

DJANGO_MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

DJANGO_SETTINGS = """\
DEBUG = False
SECRET_KEY = "only-for-this-test"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "site_urls"
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
INSTALLED_APPS = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
USE_TZ = True
"""

DJANGO_URLS = """\
from django.db import connection
from django.http import JsonResponse
from django.urls import path


def article(request, pk):
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT %s", [pk])
    words = sum(len(str(i)) for i in range(200000))
    return JsonResponse({"id": pk, "words": words})


urlpatterns = [path("articles/<int:pk>/", article)]
"""
