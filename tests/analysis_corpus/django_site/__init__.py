"""The Django corpus site (gunicorn, WSGI): the Django ORM, templates, cache, urllib, threads."""
