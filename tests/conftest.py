"""Shared fixtures: one real embedded Kafka broker (Tansu) per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connectors.kafka import KafkaSettings, ensure_topics
from listener.broker import EmbeddedBroker

from .http_receiver import HttpReceiver, http_receiver


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The same code path as the embedded default of the service."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture()
def kafka(broker: EmbeddedBroker) -> KafkaSettings:
    """Settings with fresh topic and group names, so tests never see each other's data."""
    tag = uuid.uuid4().hex[:8]
    settings = replace(
        KafkaSettings(),
        bootstrap_servers=(broker.bootstrap,),
        mentions_topic=f"mentions-{tag}",
        alerts_topic=f"alerts-{tag}",
        dlq_topic=f"mentions.dlq-{tag}",
        state_topic=f"state-{tag}",
        group_id=f"listener-{tag}",
        enable_idempotence=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )
    ensure_topics(settings, [settings.mentions_topic, settings.alerts_topic, settings.dlq_topic,
                             settings.state_topic])
    return settings


@pytest.fixture()
def receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server on loopback recording what it receives (see tests/http_receiver.py)."""
    with http_receiver() as r:
        yield r
