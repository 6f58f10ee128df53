import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()

from portal.enforcement.feeds import not_modified_from_memory  # noqa: E402 - needs Django set up


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # A firewall's idle feed poll answered before Django's request cycle (see the function).
    if (headers := not_modified_from_memory(environ)) is not None:
        start_response("304 Not Modified", headers)
        return []
    return django_application(environ, start_response)
