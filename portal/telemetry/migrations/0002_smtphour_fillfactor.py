from django.db import migrations


def set_fillfactor(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Every report adds to rows of the current hour: room left in each page lets PostgreSQL update
    # them in place (HOT), without touching the indexes. SQLite has no such setting.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE telemetry_smtphour SET (fillfactor = 60)")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, migrations.RunPython.noop)]
