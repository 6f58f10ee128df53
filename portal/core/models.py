from __future__ import annotations

from django.db import models


class Tally(models.Model):
    """One number shared by every process: web processes add to it, the worker sets it, and
    /metrics reads it, so the value is the same whichever gunicorn process answers a scrape."""

    name = models.CharField(max_length=100, primary_key=True)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tallies"

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
