from __future__ import annotations

import os

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from the
# same thread are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing(django_test_environment: None) -> None:
    # PBKDF2 at production strength costs ~0.3 s per user created; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Counters written at once, so that a test reads exactly what it counted.
    settings.METRICS_FLUSH_SECONDS = 0
    # The feeds read their version afresh, so that a test sees its change at once.
    settings.FEED_VERSION_CACHE_SECONDS = 0
