"""Configuration from command-line flags, each with an environment variable behind it.

A flag wins over its variable; the variable wins over the default. Secrets (the API key, the
webhook secrets) come from a file or the environment, never from a flag, so that they don't
show in `ps`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from portal.agent.nft import Counting, Names
from portal.agent.report import AGENT_NAME, default_agent_name
from portal.agent.webhooks import decode_secret

FAIL_STATIC, FAIL_CLOSED = "fail-static", "fail-closed"
PREFIX = "EEP_AGENT_"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Config:
    portal_url: str
    key: str
    names: Names = field(default_factory=Names)
    poll_seconds: float = 10.0
    max_backoff_seconds: float = 300.0
    timeout_seconds: float = 10.0
    page_size: int = 1000
    state_dir: Path = Path("/var/lib/eep-agent")
    fail_mode: str = FAIL_STATIC
    health_listen: Address | None = Address("127.0.0.1", 9125)
    stale_seconds: float = 120.0
    webhook_listen: Address | None = None
    webhook_secrets: tuple[str, ...] = ()
    ca_file: str | None = None
    log_level: str = "INFO"
    agent_name: str = "agent"
    telemetry_seconds: float = 60.0  # 0: no reports
    counting: Counting = field(default_factory=Counting)


# (flag, variable suffix, default, help). The variable is PREFIX + suffix.
OPTIONS: list[tuple[str, str, str, str]] = [
    ("--portal-url", "PORTAL_URL", "", "The portal's base URL, e.g. https://portal.example.net (required)."),
    ("--key-file", "KEY_FILE", "", "File holding the enforcement API key (or set EEP_AGENT_KEY)."),
    ("--table", "TABLE", "egress_port25", "nftables table (family inet) the agent owns."),
    ("--set4", "SET4", "exempt4", "Name of the IPv4 exemption set in that table."),
    ("--set6", "SET6", "exempt6", "Name of the IPv6 exemption set in that table."),
    ("--poll-seconds", "POLL_SECONDS", "10", "How often to ask the change feed."),
    ("--max-backoff-seconds", "MAX_BACKOFF_SECONDS", "300", "Longest wait between retries after failures."),
    ("--timeout-seconds", "TIMEOUT_SECONDS", "10", "Timeout of one request to the portal."),
    ("--page-size", "PAGE_SIZE", "1000", "Changes per request (1 to 5000)."),
    ("--state-dir", "STATE_DIR", "/var/lib/eep-agent", "Where the cursor is kept (state.json)."),
    (
        "--fail-mode",
        "FAIL_MODE",
        FAIL_STATIC,
        "When the key is refused: fail-static keeps the set, fail-closed empties it.",
    ),
    ("--health-listen", "HEALTH_LISTEN", "127.0.0.1:9125", "host:port of GET /healthz; 'off' to disable."),
    (
        "--stale-seconds",
        "STALE_SECONDS",
        "",
        "Health turns 503 when the last sync is older (default: max(120, 3 polls)).",
    ),
    ("--webhook-listen", "WEBHOOK_LISTEN", "", "host:port to receive the portal's webhooks on; unset: none."),
    (
        "--webhook-secret-file",
        "WEBHOOK_SECRET_FILE",
        "",
        "File with the endpoint's whsec_ secret(s), one a line.",
    ),
    ("--ca-file", "CA_FILE", "", "CA bundle for the portal's certificate (default: the system's)."),
    ("--log-level", "LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR."),
    ("--agent-name", "NAME", "", "Name in telemetry reports, 1-64 of A-Z a-z 0-9 . _ - (default: hostname)."),
    (
        "--telemetry-seconds",
        "TELEMETRY_SECONDS",
        "60",
        "How often to report port-25 connection counts to the portal; 0: never.",
    ),
    ("--counter-set-size", "COUNTER_SET_SIZE", "65536", "Addresses each counting set holds at most."),
    (
        "--counter-timeout-seconds",
        "COUNTER_TIMEOUT_SECONDS",
        "3600",
        "An address leaves a counting set this long after its first connection.",
    ),
]


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m portal.agent",
        description="Keep an nftables set equal to the portal's active port-25 exemptions.",
        epilog="Every flag also reads EEP_AGENT_<NAME> (e.g. EEP_AGENT_PORTAL_URL). Secrets: "
        "EEP_AGENT_KEY or --key-file; EEP_AGENT_WEBHOOK_SECRET (comma-separated) or --webhook-secret-file.",
    )
    for flag, suffix, default, help_ in OPTIONS:
        parser.add_argument(
            flag, default=environ.get(PREFIX + suffix, default), help=f"{help_} [{PREFIX}{suffix}]"
        )
    return parser


def _number(text: str, flag: str, *, minimum: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number of seconds, got {text!r}.") from None
    if value < minimum:
        raise ConfigError(f"{flag} must be at least {minimum}.")
    return value


def parse_address(text: str, flag: str) -> Address | None:
    text = text.strip()
    if not text or text.lower() == "off":
        return None
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{flag} must be host:port, e.g. 127.0.0.1:9125 or [::]:9126, got {text!r}.")
    return Address(host.strip("[]") or "0.0.0.0", int(port))  # noqa: S104 - ":port" means every address, on purpose


def _read_secret_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"Can't read the {what} from {path}: {exc.strerror}.") from None


def read_key(key_file: str, environ: Mapping[str, str]) -> str:
    key = _read_secret_file(key_file, "API key") if key_file else environ.get(PREFIX + "KEY", "").strip()
    if not key:
        raise ConfigError("No API key: give --key-file (or EEP_AGENT_KEY) with an enforcement key.")
    return key


def _counting(args: argparse.Namespace) -> Counting:
    size = int(_number(args.counter_set_size, "--counter-set-size", minimum=1))
    timeout = int(_number(args.counter_timeout_seconds, "--counter-timeout-seconds", minimum=60))
    return Counting(size=size, timeout=timeout)


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    args = _parser(environ).parse_args(argv)
    parts = urlsplit(args.portal_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("--portal-url must be the portal's http(s) URL, e.g. https://portal.example.net.")
    key = read_key(args.key_file, environ)
    agent_name = args.agent_name or default_agent_name()
    if not AGENT_NAME.match(agent_name):
        raise ConfigError(f"--agent-name is 1-64 of A-Z a-z 0-9 . _ -, got {agent_name!r}.")
    telemetry = _number(args.telemetry_seconds, "--telemetry-seconds", minimum=0)
    if 0 < telemetry < 1:
        raise ConfigError("--telemetry-seconds is 0 (off) or at least 1.")
    try:
        names = Names(table=args.table, set4=args.set4, set6=args.set6)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.fail_mode not in (FAIL_STATIC, FAIL_CLOSED):
        raise ConfigError(f"--fail-mode is {FAIL_STATIC} or {FAIL_CLOSED}, got {args.fail_mode!r}.")
    poll = _number(args.poll_seconds, "--poll-seconds", minimum=0.1)
    page_size = int(_number(args.page_size, "--page-size", minimum=1))
    if page_size > 5000:
        raise ConfigError("--page-size is at most 5000.")
    secrets_text = (
        _read_secret_file(args.webhook_secret_file, "webhook secret")
        if args.webhook_secret_file
        else environ.get(PREFIX + "WEBHOOK_SECRET", "")
    )
    secrets = tuple(s for s in secrets_text.replace(",", " ").split() if s)
    for secret in secrets:
        try:
            decode_secret(secret)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    webhook_listen = parse_address(args.webhook_listen, "--webhook-listen")
    if webhook_listen and not secrets:
        raise ConfigError(
            "--webhook-listen needs the endpoint's secret "
            "(--webhook-secret-file or EEP_AGENT_WEBHOOK_SECRET)."
        )
    return Config(
        portal_url=args.portal_url.rstrip("/"),
        key=key,
        names=names,
        poll_seconds=poll,
        max_backoff_seconds=_number(args.max_backoff_seconds, "--max-backoff-seconds", minimum=poll),
        timeout_seconds=_number(args.timeout_seconds, "--timeout-seconds", minimum=0.1),
        page_size=page_size,
        state_dir=Path(args.state_dir),
        fail_mode=args.fail_mode,
        health_listen=parse_address(args.health_listen, "--health-listen"),
        stale_seconds=(
            _number(args.stale_seconds, "--stale-seconds", minimum=poll)
            if args.stale_seconds
            else max(120.0, 3 * poll)
        ),
        webhook_listen=webhook_listen,
        webhook_secrets=secrets,
        ca_file=args.ca_file or None,
        log_level=args.log_level.upper(),
        agent_name=agent_name,
        telemetry_seconds=telemetry,
        counting=_counting(args),
    )
