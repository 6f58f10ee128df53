"""Parsing abuse reports in the Abuse Reporting Format (RFC 5965) with the standard library."""

from __future__ import annotations

import email
import email.policy
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

MAX_REPORT_BYTES = 2_000_000


class ArfError(ValueError):
    """Not a usable ARF report; the message says what is wrong with it."""


@dataclass
class FeedbackReport:
    feedback_type: str
    source_ip: str
    arrival_date: datetime | None
    user_agent: str
    reported_domains: list[str] = field(default_factory=list)
    original_mail_from: str = ""
    original_rcpt_to: str = ""
    reporting_mta: str = ""
    subject: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def parse_arf(raw: bytes) -> FeedbackReport:
    if len(raw) > MAX_REPORT_BYTES:
        raise ArfError(f"The report is {len(raw):,} bytes; at most {MAX_REPORT_BYTES:,} are accepted.")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if message.get_content_type() != "multipart/report":
        raise ArfError(
            f"This is a {message.get_content_type()} message; an ARF report is multipart/report "
            "(report-type=feedback-report). Upload the report as received, with all its headers."
        )
    if message.get_param("report-type", header="content-type") != "feedback-report":
        raise ArfError('The multipart/report is not of report-type "feedback-report".')
    part = next((p for p in message.walk() if p.get_content_type() == "message/feedback-report"), None)
    if part is None:
        raise ArfError("The report has no message/feedback-report part (RFC 5965 section 2).")
    fields = _report_fields(part)
    missing = [name for name in ("feedback-type", "user-agent", "version") if name not in fields]
    if missing:
        raise ArfError(
            f"The feedback report lacks the required field(s) {', '.join(missing)} (RFC 5965 3.1)."
        )
    source = fields.get("source-ip", "").strip().strip("[]")
    if not source:
        raise ArfError("The feedback report has no Source-IP, so it can't be tied to an address.")
    try:
        source_ip = str(ipaddress.ip_address(source))
    except ValueError:
        raise ArfError(f"Source-IP “{source}” is not an IP address.") from None
    arrival = None
    if "arrival-date" in fields:
        try:
            arrival = parsedate_to_datetime(fields["arrival-date"])
        except (TypeError, ValueError):
            raise ArfError(f"Arrival-Date “{fields['arrival-date']}” is not an RFC 5322 date.") from None
        if arrival.tzinfo is None:
            raise ArfError(f"Arrival-Date “{fields['arrival-date']}” has no time zone.")
    original = next(
        (p for p in message.walk() if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")), None
    )
    return FeedbackReport(
        feedback_type=fields["feedback-type"].lower(),
        source_ip=source_ip,
        arrival_date=arrival,
        user_agent=fields["user-agent"],
        reported_domains=[d.strip() for d in fields.get("reported-domain", "").split(",") if d.strip()],
        original_mail_from=fields.get("original-mail-from", ""),
        original_rcpt_to=fields.get("original-rcpt-to", ""),
        reporting_mta=fields.get("reporting-mta", ""),
        subject=_original_subject(original),
        fields=fields,
    )


def _report_fields(part: Message) -> dict[str, str]:
    payload = part.get_payload()
    # The email package parses message/* parts as a list of sub-messages; the report's fields
    # are the headers of the first one.
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        items = list(payload[0].items())
    else:
        text = part.get_payload(decode=True) or b""
        inner = email.message_from_bytes(
            text if isinstance(text, bytes) else str(text).encode(), policy=email.policy.default
        )
        items = list(inner.items())
    fields: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields and key == "reported-domain" else str(value)
    return fields


def _original_subject(part: Message | None) -> str:
    if part is None:
        return ""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], EmailMessage | Message):
        return str(payload[0].get("subject", ""))[:200]
    return ""
