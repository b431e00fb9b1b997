from __future__ import annotations

from django.urls import path

from tests.analysis_corpus.django_site import views

urlpatterns = [
    path("ready", views.ready),
    path("d/roster", views.roster),
    path("d/teams", views.teams),
    path("d/events", views.events),
    path("d/catalogue", views.catalogue),
    path("d/forecast", views.forecast),
    path("d/stock", views.stock),
    path("d/dispatch", views.dispatch),
    path("d/blend", views.blended),
    path("d/health", views.health),
]
