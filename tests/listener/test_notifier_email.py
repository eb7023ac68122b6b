"""The e-mail notifier against a real SMTP server (aiosmtpd) on 127.0.0.1.

STARTTLS and implicit TLS run against a throwaway self-signed certificate made
with the ``openssl`` command line tool; those tests are skipped where it is
missing (the ``cryptography`` package is not a dependency).
"""

from __future__ import annotations

import email
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from connectors.simulator import demo_simulation
from detectors import AlertEvent, Severity, Status
from listener.alerts import render_text
from listener.notifiers.base import NotifierConfigError, NotifierError
from listener.notifiers.email import EmailNotifier, build, event_from_mapping, message_id
from listener.offline import run_items
from listener.pipeline import PipelineSettings

EVENTS = run_items(demo_simulation().items(), PipelineSettings()).events
PASSWORD = "s3cr3t-Pa55word-xyz"
ENV = {"SMTP_PASSWORD": PASSWORD}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that records every accepted message and scripts RCPT replies."""

    def __init__(self, rcpt_replies: dict[str, str] | None = None) -> None:
        self.rcpt_replies = rcpt_replies or {}
        self.messages: list[dict[str, Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "raw": bytes(envelope.original_content or envelope.content),
            "message": email.message_from_bytes(envelope.content, policy=default_policy),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "login": getattr(session.auth_data, "login", None),
        })
        return "250 Message accepted for delivery"


class Server:
    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        self.handler = handler
        self.port = free_port()
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> Server:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def table(port: int, **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"type": "email", "name": "comms-mail", "host": "127.0.0.1", "port": port,
                         "starttls": False, "from_addr": "Crisiswatch <crisiswatch@example.com>",
                         "to": ["oncall@example.com", "legal@example.com"]}
    t.update(extra)
    return t


def hand_event(**changes: Any) -> dict[str, Any]:
    event = AlertEvent(
        id="shop & co:20261124T0202Z:0:triggered", crisis_id="shop & co:20261124T0202Z", brand="shop & co",
        status=Status.TRIGGERED, severity=Severity.WARNING, at=1795485900, started_at=1795485720,
        summary="Possible crisis for shop & co: <b>bold</b> claims",
        stats={"window_minutes": 10, "mentions": 12, "negatives": 9, "negative_share": 0.75,
               "baseline_mentions": 4.0, "baseline_negatives": 1.0, "baseline_negative_share": 0.25,
               "volume_ratio": 3.0, "negative_ratio": 9.0, "negative_reach": 1234},
        evidence={"terms": [{"term": "<img src=x onerror=alert(1)>", "mentions": 5}],
                  "mentions": [{"id": "x:1", "text": "they hacked us <script>alert('pwned')</script> & more",
                                "author": "<evil>", "reach": 99, "url": "javascript:alert(1)", "source": "web"},
                               {"id": "x:2", "text": "second", "author": "@ok", "reach": 5,
                                "url": "https://example.com/p?a=1&b=2", "source": "reddit"}],
                  "sources": {"web": 1, "reddit": 1}},
        playbook=("Say sorry & mean it", "Fix <it>"),
    ).to_dict()
    event.update(changes)
    return event


def parts(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(("plain",))
    rich = msg.get_body(("html",))
    assert plain is not None and rich is not None
    return plain.get_content(), rich.get_content()


# --- delivery, headers, both parts -------------------------------------------


def test_delivers_a_multipart_alternative_message_with_both_renderings() -> None:
    handler = Recorder()
    with Server(handler) as srv:
        notifier = build(table(srv.port), "receivers[0]", {})
        notifier.send(EVENTS[0].to_dict())
    [got] = handler.messages
    assert got["mail_from"] == "crisiswatch@example.com"
    assert got["rcpt_tos"] == ["oncall@example.com", "legal@example.com"]
    msg = got["message"]
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["From"] == "Crisiswatch <crisiswatch@example.com>"
    assert msg["To"] == "oncall@example.com, legal@example.com"
    assert msg["Date"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Crisiswatch-Alert-Id"] == EVENTS[0].id
    assert msg["X-Crisiswatch-Crisis-Id"] == EVENTS[0].crisis_id
    assert msg["X-Crisiswatch-Severity"] == EVENTS[0].severity.value

    subject = str(msg["Subject"])
    head = f"[crisiswatch] {EVENTS[0].severity.value.upper()} triggered: acme — "
    assert subject.startswith(head)
    summary = subject[len(head):]
    assert EVENTS[0].summary.startswith(summary.rstrip("…")) and summary.endswith("…")
    assert len(summary) <= 81

    plain, rich = parts(msg)
    assert plain.replace("\r\n", "\n") == render_text(EVENTS[0]) + "\n"
    assert "Possible crisis for acme" in rich
    assert "<ol" in rich and rich.count("<li") == len(EVENTS[0].playbook)
    for step in EVENTS[0].playbook:
        assert step.replace("'", "&#x27;") in rich
    for m in EVENTS[0].evidence["mentions"]:  # type: ignore[union-attr]
        assert m["text"] in rich and m["author"] in rich and f'href="{m["url"]}"' in rich
    assert rich.count("<blockquote") == 3
    source, count = next(iter(EVENTS[0].evidence["sources"].items()))  # type: ignore[union-attr]
    assert "data breach" in rich and f"{source} {count}" in rich
    assert EVENTS[0].id in rich and EVENTS[0].crisis_id in rich
    stats = EVENTS[0].stats
    for number in (stats["negatives"], stats["mentions"], f"{stats['negative_share']:.0%}",  # numbers vs baseline
                   f"{stats['baseline_negative_share']:.0%}"):
        assert f">{number}<" in rich


def test_user_text_is_escaped_in_html_and_unsafe_links_are_dropped() -> None:
    handler = Recorder()
    with Server(handler) as srv:
        build(table(srv.port, to=["a@example.com"]), "r", {}).send(hand_event())
    plain, rich = parts(handler.messages[0]["message"])
    assert "<script>" not in rich and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in rich
    assert "<img" not in rich and "&lt;img src=x onerror=alert(1)&gt;" in rich
    assert "<b>" not in rich and "&lt;b&gt;bold&lt;/b&gt;" in rich
    assert "&lt;evil&gt;" in rich and "Fix &lt;it&gt;" in rich and "shop &amp; co" in rich
    assert "javascript:" not in rich
    assert 'href="https://example.com/p?a=1&amp;b=2"' in rich
    assert "<script>alert('pwned')</script>" in plain  # plain text is text: nothing to escape


def test_message_id_is_deterministic_and_updates_thread_under_the_triggered_message() -> None:
    handler = Recorder()
    with Server(handler) as srv:
        notifier = build(table(srv.port, to=["a@example.com"]), "r", {})
        for e in EVENTS:
            notifier.send(e.to_dict())
        notifier.send(EVENTS[0].to_dict())  # a redelivery
    msgs = [m["message"] for m in handler.messages]
    n = len(EVENTS)
    assert EVENTS[0].status is Status.TRIGGERED and EVENTS[-1].status is Status.RESOLVED and n >= 3
    root = msgs[0]["Message-ID"]
    assert root == "<crisiswatch.acme.20261124T0202Z.0.triggered@example.com>"
    assert msgs[-1]["Message-ID"] == root  # recognisable as the same message
    assert msgs[0]["In-Reply-To"] is None and msgs[0]["References"] is None
    for m, e in zip(msgs[1:n], EVENTS[1:], strict=True):
        assert m["In-Reply-To"] == root and m["References"] == root
        assert m["Message-ID"] != root and m["X-Crisiswatch-Alert-Id"] == e.id
    assert len({m["Message-ID"] for m in msgs[:n]}) == n
    assert str(msgs[n - 1]["Subject"]).startswith(f"[crisiswatch] {EVENTS[-1].severity.value.upper()} resolved: acme — ")
    assert msgs[n - 1]["Importance"] is None and msgs[1]["Importance"] == "high"


def test_message_ids_are_valid_and_distinct_for_awkward_brands() -> None:
    ids = ["acme:20261124T0202Z:0:triggered", "a.b:x:0:triggered", "a:b:x:0:triggered", "a::b:0:updated",
           ":lead:0:x", "Café <Ünï> & co:1:x", "x" * 300 + ":0:triggered", "y" * 300 + ":0:triggered"]
    made = [message_id(i, "example.com") for i in ids]
    dot_atom = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@example\.com>")
    for m in made:
        assert dot_atom.fullmatch(m), m
        assert len(m) < 200
    assert len(set(made)) == len(made)
    assert message_id(ids[0], "example.com") == made[0]


def test_event_round_trips_through_its_json_form() -> None:
    for e in EVENTS:
        assert event_from_mapping(e.to_dict()) == e


# --- AUTH, TLS --------------------------------------------------------------


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"bot" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)  # handled=False: server says 535


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_login_with_the_password_from_the_environment() -> None:
    handler = Recorder()
    with Server(handler, authenticator=_authenticator, auth_required=True, auth_require_tls=False) as srv:
        notifier = build(table(srv.port, username="bot", password_env="SMTP_PASSWORD"), "r", ENV)
        notifier.send(EVENTS[0].to_dict())
    [got] = handler.messages
    assert got["authenticated"] is True and got["login"] == b"bot"
    assert PASSWORD not in repr(notifier) and "bot" in repr(notifier)
    assert PASSWORD.encode() not in got["raw"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_failure_is_permanent_and_the_password_never_shows() -> None:
    handler = Recorder()
    with Server(handler, authenticator=_authenticator, auth_required=True, auth_require_tls=False) as srv:
        notifier = build(table(srv.port, username="bot", password_env="SMTP_PASSWORD"), "r",
                         {"SMTP_PASSWORD": "wrong-" + PASSWORD})
        with pytest.raises(NotifierError) as err:
            notifier.send(EVENTS[0].to_dict())
    assert err.value.retryable is False and "535" in str(err.value)
    assert PASSWORD not in str(err.value) and PASSWORD not in repr(err.value) and PASSWORD not in repr(notifier)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert handler.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_login_without_username_and_a_server_that_requires_one_refuses_permanently() -> None:
    with Server(Recorder(), authenticator=_authenticator, auth_required=True, auth_require_tls=False) as srv:
        with pytest.raises(NotifierError) as err:
            build(table(srv.port), "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is False and "530" in str(err.value)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: TLS not exercised")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=30)
    return crt, key


def _server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def test_starttls_then_auth(cert: tuple[Path, Path]) -> None:
    handler = Recorder()
    with Server(handler, tls_context=_server_tls(cert), require_starttls=True, authenticator=_authenticator,
                auth_required=True) as srv:  # AUTH only after STARTTLS (aiosmtpd's default)
        notifier = build(table(srv.port, starttls=True, ca_file=str(cert[0]), username="bot",
                               password_env="SMTP_PASSWORD"), "r", ENV)
        notifier.send(EVENTS[0].to_dict())
    [got] = handler.messages
    assert got["tls"] is True and got["authenticated"] is True and got["login"] == b"bot"


def test_starttls_is_the_default_and_an_untrusted_certificate_is_permanent(cert: tuple[Path, Path]) -> None:
    handler = Recorder()
    with Server(handler, tls_context=_server_tls(cert), require_starttls=True) as srv:
        t = table(srv.port)
        del t["starttls"]
        with pytest.raises(NotifierError) as err:
            build(t, "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is False and "ca_file" in str(err.value)
    assert handler.messages == []


def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    handler = Recorder()
    with Server(handler, ssl_context=_server_tls(cert)) as srv:
        t = table(srv.port, ssl=True, ca_file=str(cert[0]))
        del t["starttls"]
        build(t, "r", {}).send(EVENTS[0].to_dict())
    assert handler.messages[0]["tls"] is True


def test_starttls_asked_for_but_not_offered_fails_instead_of_downgrading() -> None:
    handler = Recorder()
    with Server(handler) as srv:
        with pytest.raises(NotifierError) as err:
            build(table(srv.port, starttls=True), "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is False and "STARTTLS" in str(err.value)
    assert handler.messages == []


# --- SMTP replies and network failures --------------------------------------


@pytest.mark.parametrize(("reply", "retryable"), [("451 4.3.0 Mailbox busy, try later", True),
                                                  ("550 5.1.1 No such user", False),
                                                  ("452 4.2.2 Over quota", True)])
def test_rcpt_refused(reply: str, retryable: bool) -> None:
    handler = Recorder({"oncall@example.com": reply})
    with Server(handler) as srv:
        with pytest.raises(NotifierError) as err:
            build(table(srv.port, to=["oncall@example.com"]), "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is retryable
    assert reply.split()[0] in str(err.value) and "oncall@example.com" in str(err.value)
    assert handler.messages == []


def test_some_recipients_refused_still_delivers_to_the_others_and_says_so() -> None:
    handler = Recorder({"legal@example.com": "550 5.1.1 No such user"})
    with Server(handler) as srv:
        with pytest.raises(NotifierError) as err:
            build(table(srv.port), "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is False and "legal@example.com" in str(err.value) and "550" in str(err.value)
    assert [m["rcpt_tos"] for m in handler.messages] == [["oncall@example.com"]]


def test_connection_refused_is_retryable() -> None:
    notifier = build(table(free_port()), "r", {})
    with pytest.raises(NotifierError) as err:
        notifier.send(EVENTS[0].to_dict())
    assert err.value.retryable is True and "connection failed" in str(err.value)


def test_a_server_that_never_greets_times_out_retryably() -> None:
    with socket.socket() as listener:  # the kernel accepts; nobody ever answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        notifier = build(table(listener.getsockname()[1], timeout_s=0.2), "r", {})
        with pytest.raises(NotifierError) as err:
            notifier.send(EVENTS[0].to_dict())
    assert err.value.retryable is True and "timed out" in str(err.value)


@pytest.fixture()
def scripted_greeting() -> Iterator[tuple[list[bytes], int]]:
    """A raw TCP server that sends each connection the next scripted greeting and hangs up."""
    greetings: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            if greetings:
                conn.sendall(greetings.pop(0))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield greetings, listener.getsockname()[1]
    listener.close()
    t.join(5)


def test_a_dropped_connection_is_retryable(scripted_greeting: tuple[list[bytes], int]) -> None:
    _, port = scripted_greeting
    with pytest.raises(NotifierError) as err:
        build(table(port), "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is True and "disconnected" in str(err.value)


def test_421_at_connect_is_retryable(scripted_greeting: tuple[list[bytes], int]) -> None:
    greetings, port = scripted_greeting
    greetings.append(b"421 4.3.2 Service not available, closing channel\r\n")
    with pytest.raises(NotifierError) as err:
        build(table(port), "r", {}).send(EVENTS[0].to_dict())
    assert err.value.retryable is True and "421" in str(err.value)


def test_a_malformed_event_is_not_retried() -> None:
    notifier = build(table(free_port()), "r", {})
    with pytest.raises(NotifierError) as err:
        notifier.send({"id": "x", "status": "nonsense"})
    assert err.value.retryable is False and "malformed" in str(err.value)


# --- configuration ------------------------------------------------------------


def test_defaults() -> None:
    n = build({"type": "email", "name": "m", "host": "smtp.example.com", "from_addr": "cw@example.com",
               "to": ["a@example.com"]}, "r", {})
    assert isinstance(n, EmailNotifier)
    assert (n.port, n.starttls, n.use_ssl, n.username, n.subject_prefix, n.timeout_s) == \
        (587, True, False, None, "[crisiswatch]", 10.0)
    s = build({"type": "email", "name": "m", "host": "smtp.example.com", "from_addr": "cw@example.com",
               "to": ["a@example.com"], "ssl": True}, "r", {})
    assert (s.port, s.starttls, s.use_ssl) == (465, False, True)


@pytest.mark.parametrize(("change", "needle"), [
    ({"tls": True}, "receivers[3].tls is not an e-mail receiver option"),
    ({"to": None}, "receivers[3].to is required"),
    ({"to": []}, "receivers[3].to is required"),
    ({"to": "a@example.com"}, "to = ['a@example.com']"),
    ({"to": ["not an address"]}, "receivers[3].to[0]"),
    ({"from_addr": None}, "receivers[3].from_addr"),
    ({"host": None}, "receivers[3].host is required"),
    ({"port": "587"}, "receivers[3].port"),
    ({"port": True}, "receivers[3].port"),
    ({"starttls": "yes"}, "receivers[3].starttls must be true or false"),
    ({"ssl": True, "starttls": True}, "exclude each other"),
    ({"timeout_s": 0}, "receivers[3].timeout_s"),
    ({"subject_prefix": "a\nBcc: x@evil.example"}, "receivers[3].subject_prefix"),
    ({"username": "bot"}, "receivers[3].password_env is required"),
    ({"username": "bot", "password_env": "NOPE"}, "environment variable NOPE is not set"),
    ({"password_env": "SMTP_PASSWORD"}, "receivers[3].password_env is set but username is not"),
    ({"username": "bot", "password_env": "SMTP_PASSWORD", "host": "smtp.example.com", "starttls": False},
     "unencrypted"),
    ({"ca_file": "/nonexistent/ca.pem", "starttls": True}, "receivers[3].ca_file"),
])
def test_config_errors_name_the_key(change: dict[str, Any], needle: str) -> None:
    t = {**table(2525), **change}
    for k, v in change.items():
        if v is None:
            del t[k]
    with pytest.raises(NotifierConfigError) as err:
        build(t, "receivers[3]", ENV)
    assert needle in str(err.value)
    assert PASSWORD not in str(err.value)


def test_the_docs_example_is_what_the_code_sends() -> None:
    from pathlib import Path

    from listener.notifiers.email import example_html

    example = Path(__file__).resolve().parents[2] / "docs" / "email-example.html"
    assert example.read_text(encoding="utf-8") == example_html(), (
        "regenerate it: python -m listener.notifiers.email > docs/email-example.html (and the PNG, see README)")
