"""Text written for customers (fix hints, denial reasons) with its web addresses as links."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Only http and https: a hint is text from checks and reviewers, and anything else (javascript:,
# data:) must stay text. Django's urlize would also link bare names like "mail.example.com",
# which hints use as examples, not as places to go.
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)"


@register.filter
def link_urls(text: str) -> SafeString:
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        parts.append(escape(text[last : match.start()]))
        parts.append(format_html('<a href="{}" rel="noopener noreferrer">{}</a>', url, url))
        last = match.start() + len(url)
    parts.append(escape(text[last:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped
