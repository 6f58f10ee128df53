"""`python -m portal.agent`: configure, start the HTTP side, follow the portal until SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from portal.agent import flows
from portal.agent.config import Config, ConfigError, parse
from portal.agent.counters import CounterReader
from portal.agent.nft import NftError
from portal.agent.server import AgentServer
from portal.agent.sync import Agent
from portal.agent.telemetry import Telemetry
from portal.agent.webhooks import WebhookReceiver

log = logging.getLogger("portal.agent")


def servers_for(config: Config, agent: Agent) -> list[AgentServer]:
    receiver = (
        WebhookReceiver(config.webhook_secrets, agent.on_webhook, time.time)
        if config.webhook_listen
        else None
    )
    if config.health_listen and config.health_listen == config.webhook_listen:
        return [AgentServer(config.health_listen, agent, health=True, webhooks=receiver)]
    servers = []
    if config.health_listen:
        servers.append(AgentServer(config.health_listen, agent, health=True, webhooks=None))
    if config.webhook_listen:
        servers.append(AgentServer(config.webhook_listen, agent, health=False, webhooks=receiver))
    return servers


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["flows"]:
        return run_flows(argv[1:])
    try:
        config = parse(argv, os.environ)
    except ConfigError as exc:
        print(f"portal.agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    agent = Agent(config)
    try:
        agent.start()
    except NftError as exc:
        log.critical("can't manage nftables (run as root with nft installed): %s", exc)
        return 1
    try:
        servers = servers_for(config, agent)
    except OSError as exc:
        log.critical("can't listen for health or webhooks: %s", exc)
        return 1
    for server in servers:
        server.start()

    stop = threading.Event()
    telemetry = None
    if config.telemetry_seconds:
        reader = CounterReader(config.names)
        agent.before_recreate = reader.before_recreate
        telemetry = Telemetry.of(config, reader)
        telemetry.start(stop)

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        agent.wake.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        log.info("SIGHUP: taking a fresh snapshot")
        agent.request_snapshot()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    log.info(
        "following %s into nftables table inet %s (sets %s, %s); poll every %gs, %s; health %s; "
        "webhooks %s; telemetry %s",
        config.portal_url,
        config.names.table,
        config.names.set4,
        config.names.set6,
        config.poll_seconds,
        config.fail_mode,
        config.health_listen or "off",
        config.webhook_listen or "off",
        f"every {config.telemetry_seconds:g}s as {config.agent_name}" if config.telemetry_seconds else "off",
    )
    agent.run(stop)
    if telemetry and telemetry.thread:
        telemetry.thread.join()
    for server in servers:
        server.shutdown()
        server.server_close()
    log.info("stopped; the table stays in force (nft delete table inet %s removes it)", config.names.table)
    return 0


def run_flows(argv: Sequence[str]) -> int:
    stop = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    return flows.main(argv, os.environ, stop)
