from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState
from django.db.models.functions import Cast, Upper


class AddIndexOnPostgres(migrations.AddIndex):
    """The index in the model state everywhere, in the database on PostgreSQL only: SQLite has
    neither GIN nor pg_trgm, and its search stays the simple scan."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("unblock", "0006_review_queue_indexes"),
    ]

    operations = [
        # CREATE EXTENSION IF NOT EXISTS pg_trgm; a no-op on other databases.
        TrigramExtension(),
        AddIndexOnPostgres(
            model_name="unblockrequest",
            index=GinIndex(
                OpClass(Upper(Cast("sending_domains", models.TextField())), name="gin_trgm_ops"),
                name="request_domains_trgm",
            ),
        ),
    ]
