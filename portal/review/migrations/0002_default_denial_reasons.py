from django.db import migrations

REASONS = [
    (
        "Use port 587 or a relay",
        "Your use case works without port 25: send through your provider's or an email service's submission server on port 587 with authentication.",
    ),
    (
        "Reverse DNS not set up",
        "Set a reverse DNS (PTR) name for each address that resolves back to it (forward-confirmed), then file a new request.",
    ),
    (
        "Sending domain not ready",
        "Publish SPF authorising these addresses and a DMARC record for your sending domains, then file a new request.",
    ),
    (
        "Address on a blocklist",
        "The address is listed on a Spamhaus blocklist. Find and stop the cause, have it delisted, then file a new request.",
    ),
    (
        "Account too new",
        "Port 25 is available to accounts in good standing with payment history. Please request again once your account is older and the first invoice is paid.",
    ),
    (
        "Bulk or marketing mail",
        "Bulk and marketing mail must go through an email service provider that handles consent, unsubscribes and reputation.",
    ),
]


def add(apps, schema_editor):  # type: ignore[no-untyped-def]
    DenialReason = apps.get_model("review", "DenialReason")
    for position, (title, text) in enumerate(REASONS):
        DenialReason.objects.get_or_create(title=title, defaults={"text": text, "position": position})


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]

    operations = [migrations.RunPython(add, migrations.RunPython.noop)]
