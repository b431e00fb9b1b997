"""Views of the Django corpus site; planted bottlenecks are declared in ``cases``."""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
import urllib.request
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Sum
from django.http import HttpRequest, JsonResponse
from django.template import Context, Template

from tests.analysis_corpus.django_site.models import Event, Player, Team

DOWNSTREAM = os.environ.get("CORPUS_DOWNSTREAM", "")
LISTING = Template(
    "<ul>{% for row in rows %}<li class='{% cycle 'a' 'b' %}'>{{ row.name|title }} "
    "{{ row.price|floatformat:2 }} {{ row.tags|join:', '|upper }}</li>{% endfor %}</ul>"
)
ROWS = [{"name": f"product {i}", "price": i * 1.25, "tags": ["x", f"y{i % 9}"]} for i in range(250)]
_visits = itertools.count()

_jobs: queue.Queue[tuple[int, queue.Queue[int]]] = queue.Queue()


def _worker() -> None:
    while True:
        value, reply = _jobs.get()
        time.sleep(0.12)
        reply.put(value * 2)


threading.Thread(target=_worker, daemon=True).start()


def muster() -> list[str]:
    names = []
    for player in Player.objects.order_by("id")[:40]:
        names.append(player.team.name)
    return names


def line_up() -> list[int]:
    ids = list(Team.objects.order_by("id").values_list("id", flat=True))
    return [Player.objects.filter(team_id=team_id).count() for team_id in ids]


def locate(label: str) -> float:
    found = Event.objects.filter(label__iexact=label).aggregate(total=Sum("amount"))
    return float(found["total"] or 0.0)


def present() -> int:
    return len(LISTING.render(Context({"rows": ROWS})))


def inquire() -> int:
    with urllib.request.urlopen(DOWNSTREAM + "/?ms=150", timeout=10) as response:
        return len(response.read())


def remember(skus: range) -> list[int]:
    visit = next(_visits)
    totals = []
    for sku in skus:
        key = f"stock:{visit}:{sku}"
        total = cache.get(key)
        if total is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT SUM(quantity), COUNT(DISTINCT quantity) FROM django_site_stock "
                    "WHERE sku >= %s",
                    [sku],
                )
                total = int(cursor.fetchone()[0] or 0)
            cache.set(key, total, 300)
        totals.append(total)
    return totals


def relay(value: int) -> int:
    reply: queue.Queue[int] = queue.Queue()
    _jobs.put((value, reply))
    return reply.get(timeout=5)


def blend(n: int) -> int:
    acc = 7
    for i in range(n):
        acc = (acc * 17 + i) % 999_983
    return acc


def ready(request: HttpRequest) -> JsonResponse:
    return JsonResponse({})


def roster(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"names": muster()})


def teams(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"counts": line_up()})


def events(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"total": locate("label-17")})


def catalogue(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"length": present()})


def forecast(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"size": inquire()})


def stock(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"totals": remember(range(0, 1000, 250))})


def dispatch(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": relay(21)})


def blended(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": blend(60_000)})


def health(request: HttpRequest) -> JsonResponse:
    first: Any = Team.objects.annotate(size=Count("player")).filter(pk=1).values("name", "size")
    return JsonResponse({"team": list(first)})
