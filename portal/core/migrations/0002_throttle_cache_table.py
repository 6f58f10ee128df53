from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps: Any, schema_editor: Any) -> None:
    # The API throttles' DatabaseCache table (settings.CACHES["throttle"]): created by migrate,
    # so that no deployment step can forget `createcachetable`. It does nothing when it exists.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
