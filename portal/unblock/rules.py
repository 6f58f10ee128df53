"""The rules an unblock request's text fields must follow, shared by the web form and the API.

Which addresses may be requested depends on exemptions too: `portal.enforcement.grantable`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from portal.unblock.models import UseCase

TEXT_LIMIT = 4000
MAX_DOMAINS = 20
MAX_DAILY_VOLUME = 10_000_000

BULK_REFUSAL = (
    "Bulk and marketing mail is not accepted for direct sending on port 25. Send it through an "
    "email service provider that handles consent, unsubscribes and sender reputation, on port "
    "587 or its HTTP API."
)

_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass
class RequestData:
    """What a customer fills in. Blank values are allowed in drafts, not in a submission."""

    addresses: list[str] = field(default_factory=list)
    use_case: str = ""
    justification: str = ""
    mail_software: str = ""
    sending_domains: list[str] = field(default_factory=list)
    expected_daily_volume: int | None = None
    bounce_handling: str = ""
    abuse_contact: str = ""
    accept_aup: bool = False


def split_entries(text: str) -> list[str]:
    """Split what a person pasted: one entry per line, or separated by commas or spaces."""
    return [item for item in re.split(r"[\s,;]+", text) if item]


def clean_domains(entries: list[str]) -> list[str]:
    if len(entries) > MAX_DOMAINS:
        raise ValidationError(f"Enter at most {MAX_DOMAINS} sending domains (you entered {len(entries)}).")
    domains: list[str] = []
    errors: list[str] = []
    for entry in entries:
        candidate = entry.strip().rstrip(".").lower()
        try:
            ascii_name = candidate.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_name = ""
        labels = ascii_name.split(".")
        if len(labels) < 2 or len(ascii_name) > 253 or not all(_DOMAIN_LABEL.match(x) for x in labels):
            errors.append(
                f"“{entry}” is not a domain name. Enter the domain in your From: addresses, e.g. example.com."
            )
        elif ascii_name not in domains:
            domains.append(ascii_name)
    if errors:
        raise ValidationError(errors)
    return domains


def clean_use_case(value: str) -> str:
    if value == UseCase.BULK_MARKETING:
        raise ValidationError(BULK_REFUSAL)
    return value


def clean_text(value: str, label: str) -> str:
    value = value.strip()
    if len(value) > TEXT_LIMIT:
        raise ValidationError(
            f"{label} is {len(value)} characters long; shorten it to {TEXT_LIMIT} or fewer."
        )
    return value


def clean_volume(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_DAILY_VOLUME:
        raise ValidationError(
            f"Enter the expected messages per day as a number from 1 to {MAX_DAILY_VOLUME:,}."
        )
    return value


def clean_abuse_contact(value: str) -> str:
    value = value.strip()
    if value:
        EmailValidator(
            message="Enter an email address where abuse reports reach you, e.g. abuse@example.com."
        )(value)
    return value


REQUIRED_FOR_SUBMIT = {
    "addresses": "Enter at least one address or block.",
    "use_case": "Choose what the mail server is for.",
    "justification": "Explain why port 587 or a relay service won't do.",
    "mail_software": "Name the mail server software, e.g. Postfix 3.8.",
    "sending_domains": "Enter at least one domain you send mail from.",
    "expected_daily_volume": "Enter how many messages a day you expect to send.",
    "bounce_handling": "Describe how you handle bounces and complaints.",
    "abuse_contact": "Enter an email address where abuse reports reach you.",
    "accept_aup": "Accept the acceptable-use policy to submit the request.",
}


def missing_for_submit(data: RequestData) -> dict[str, str]:
    return {name: message for name, message in REQUIRED_FOR_SUBMIT.items() if not getattr(data, name)}
