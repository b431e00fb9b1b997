"""The WSGI application; the first worker to start creates and seeds the database."""

from __future__ import annotations

import os
import random
import sqlite3

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.analysis_corpus.django_site.settings")
application = get_wsgi_application()

TEAMS = 30
PLAYERS = 60
EVENTS = 400_000
STOCK = 100_000


def _seed() -> None:
    from django.db import connection

    from tests.analysis_corpus.django_site.models import Event, Player, Stock, Team

    if Team._meta.db_table in connection.introspection.table_names():
        return
    rng = random.Random(5)
    with connection.schema_editor() as editor:
        for model in (Team, Player, Event, Stock):
            editor.create_model(model)
    # The stdlib driver directly: Django's cursor wrapper costs seconds for 250k rows.
    with sqlite3.connect(connection.settings_dict["NAME"]) as raw:
        raw.executemany(
            "INSERT INTO django_site_team (id, name) VALUES (?, ?)",
            [(t, f"team {t}") for t in range(1, TEAMS + 1)],
        )
        raw.executemany(
            "INSERT INTO django_site_player (name, team_id) VALUES (?, ?)",
            [(f"player {p}", 1 + p % TEAMS) for p in range(PLAYERS)],
        )
        raw.executemany(
            "INSERT INTO django_site_event (kind, label, amount) VALUES (?, ?, ?)",
            ((i % 9, f"label-{rng.randrange(50_000)}", rng.random()) for i in range(EVENTS)),
        )
        raw.executemany(
            "INSERT INTO django_site_stock (sku, quantity) VALUES (?, ?)",
            ((rng.randrange(1000), rng.randrange(100)) for _ in range(STOCK)),
        )


_seed()
