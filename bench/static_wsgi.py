"""The baseline of bench/feed_artifacts.py: WhiteNoise serving BENCH_STATIC_ROOT, nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from whitenoise import WhiteNoise  # type: ignore[import-untyped]


def not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


application = WhiteNoise(not_found, root=os.environ["BENCH_STATIC_ROOT"])
