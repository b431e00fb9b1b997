"""A corpus of planted bottlenecks in fresh Flask, Django and FastAPI apps, and its harness.

``cases`` declares every case (app, route, expected finding, its evidence);
``flask_app``, ``django_site`` and ``fastapi_app`` are the apps; ``servers``
serves them under gunicorn and uvicorn with the real SDK; ``downstream`` is
the slow HTTP service the I/O cases call; ``harness.run_corpus`` runs it all
and analyses what was stored; ``evidence`` summarises a record in one line.
"""
