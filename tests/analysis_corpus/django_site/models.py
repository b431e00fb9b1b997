from __future__ import annotations

from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=40)


class Player(models.Model):
    name = models.CharField(max_length=40)
    team = models.ForeignKey(Team, on_delete=models.CASCADE)


class Event(models.Model):
    """Many rows; ``label`` has no index."""

    kind = models.IntegerField()
    label = models.CharField(max_length=40)
    amount = models.FloatField()


class Stock(models.Model):
    sku = models.IntegerField()
    quantity = models.IntegerField()
