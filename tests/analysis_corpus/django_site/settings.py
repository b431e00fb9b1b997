"""Settings of the Django corpus site; the SDK reads its settings from ``PYSTRUMENT_*``."""

from __future__ import annotations

import os
from pathlib import Path

DEBUG = False
SECRET_KEY = "corpus-only"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.analysis_corpus.django_site.urls"
INSTALLED_APPS = ["tests.analysis_corpus.django_site"]
MIDDLEWARE = ["performance_monitor.django.PerformanceMiddleware"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(os.environ.get("CORPUS_HOME", ".")) / "django.sqlite3"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": []}]
PERFORMANCE_MONITOR: dict[str, object] = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
