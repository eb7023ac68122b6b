"""E-mail receiver: one alert event is one multipart/alternative message sent over SMTP.

Why e-mail: it reaches the people who are not on Slack or PagerDuty (a
communications lead, legal) and it leaves a thread per crisis in their inbox.

The message
    ``multipart/alternative`` with a plain-text part (exactly
    :func:`listener.alerts.render_text`, the console's rendering) and an HTML
    part (:func:`render_html`: inline styles only, because most mail clients
    drop ``<style>`` blocks; every piece of text from the event is escaped with
    :func:`html.escape`, and only ``http(s)`` links become ``href``\\s).

Headers
    * ``Subject: <prefix> <SEVERITY> <status>: <brand> — <summary, ~80 chars>``.
    * ``Message-ID`` is derived from the alert id alone (see :func:`message_id`):
      a redelivery after a crash carries the same Message-ID, which mail
      stores and clients use to recognise (and often drop) the duplicate.  SMTP
      has no server-side idempotency key, so this is as close as e-mail gets.
    * ``In-Reply-To`` / ``References`` name the Message-ID of the crisis's
      ``triggered`` alert (``<crisis id>:0:triggered``), so clients thread the
      escalations, updates and the resolution of one crisis under it
      (RFC 5322 §3.6.4).
    * ``X-Crisiswatch-Alert-Id``, ``X-Crisiswatch-Crisis-Id`` and
      ``X-Crisiswatch-Severity`` for mail filters; ``Auto-Submitted:
      auto-generated`` (RFC 3834) so vacation responders do not answer.

Transport (``smtplib``)
    STARTTLS on the submission port 587 by default, or implicit TLS
    (``ssl = true``, port 465); the server certificate is always verified
    (against the system's CAs, or ``ca_file`` for a private CA).  If STARTTLS is
    asked for and the server does not offer it, the send fails: there is no
    silent downgrade.  ``AUTH`` (whatever ``smtplib.SMTP.login`` picks from what
    the server offers) runs only when ``username`` is set, with the password
    from the environment variable named by ``password_env``; a password is
    never sent over an unencrypted connection except to a loopback relay.

Errors, for the outbox's retry policy
    Retryable: connection refused/reset, timeouts, DNS failures, a dropped
    connection, and every 4xx SMTP reply (421, 450, 451, 452, 454 …).  Not
    retryable: 5xx SMTP replies (550 recipient refused, 535 authentication
    failed, 554 …), a server that lacks STARTTLS/AUTH, a certificate that does
    not verify.  If the server accepts some recipients and refuses others the
    message went out to the accepted ones and ``send`` still raises (retryable
    if any refusal was a 4xx) so nobody is silently left out; a retry resends
    to everyone with the same Message-ID.  ``send`` does not retry by itself.

Config (a ``[[receivers]]`` table)::

    [[receivers]]
    type = "email"
    name = "comms-mail"
    host = "smtp.example.com"
    port = 587                      # default: 587, or 465 with ssl = true
    starttls = true                 # default true; ignored with ssl = true
    ssl = false                     # implicit TLS (SMTPS)
    ca_file = "/etc/ssl/private-ca.pem"   # optional: trust this CA bundle
    username = "crisiswatch"        # optional: AUTH only when set
    password_env = "SMTP_PASSWORD"  # required with username
    from_addr = "Crisiswatch <crisiswatch@example.com>"
    to = ["comms-oncall@example.com", "legal@example.com"]
    subject_prefix = "[crisiswatch]"
    timeout_s = 10                  # per connect and per SMTP reply

Documentation followed: Python's ``smtplib`` reference (SMTP, SMTP_SSL,
starttls, login, send_message and the exception hierarchy with
``smtp_code``/``recipients``), ``email.message.EmailMessage`` /
``email.policy.SMTP``; RFC 5321 §4.2.1 (reply codes: 4yz transient, 5yz
permanent), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS on 465 for
submission), RFC 5322 §3.6.4 (Message-ID, In-Reply-To, References, msg-id
syntax), RFC 3834 (Auto-Submitted); aiosmtpd's documentation for the test
server (Controller, ``tls_context``, ``authenticator``, ``auth_require_tls``).
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import Any

from connectors.http import is_loopback
from detectors import AlertEvent, Severity, Status
from listener.alerts import render_text

from . import oncall_text
from .base import NotifierConfigError, NotifierError, attempt_timeout, secret

KEYS = frozenset({"type", "name", "host", "port", "starttls", "ssl", "ca_file", "username", "password_env",
                  "from_addr", "to", "subject_prefix", "timeout_s"})

ALERT_ID_HEADER = "X-Crisiswatch-Alert-Id"
SUBJECT_SUMMARY_CHARS = 80

_TITLE = {
    "triggered": "Crisis triggered",
    "escalated": "Crisis escalated",
    "updated": "Crisis update",
    "resolved": "Crisis resolved",
    "notice": "Volume notice",
}
_SEVERITY_COLOR = {"info": "#2563eb", "warning": "#b45309", "error": "#dc2626", "critical": "#7f1d1d"}
_RESOLVED_COLOR = "#15803d"
_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9.\-\[\]:]+")
_ID_SAFE = re.compile(r"[A-Za-z0-9_\-]")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*")
_MAX_ID_LEFT = 160


# ---------------------------------------------------------------------------
# The message


def message_id(alert_id: str, domain: str) -> str:
    """``<crisiswatch.<alert id as a dot-atom>@<domain>>``, the same for the same alert id.

    ``:`` becomes ``.`` and any other character outside ``[A-Za-z0-9_-]`` its
    UTF-8 bytes as ``=XX``, so different ids never share a Message-ID and the
    result is valid ``msg-id`` syntax (RFC 5322 §3.6.4): ``acme:20261124T0202Z:0:triggered``
    → ``<crisiswatch.acme.20261124T0202Z.0.triggered@example.com>``.  An
    overlong id (a 200-character brand) is replaced by its SHA-256.
    """
    out: list[str] = []
    for i, ch in enumerate(alert_id):
        if _ID_SAFE.fullmatch(ch):
            out.append(ch)
        elif ch == ":" and out and not out[-1].endswith(".") and i < len(alert_id) - 1:
            out.append(".")
        else:
            out.extend(f"={b:02X}" for b in ch.encode("utf-8"))
    left = "".join(out)
    if len(left) > _MAX_ID_LEFT:
        left = "sha256-" + hashlib.sha256(alert_id.encode("utf-8")).hexdigest()
    return f"<crisiswatch.{left}@{domain}>"


def triggered_alert_id(crisis_id: str) -> str:
    """The id of a crisis's first alert (see ``detectors.detector``: ``<crisis id>:<n>:<status>``, n = 0)."""
    return f"{crisis_id}:0:{Status.TRIGGERED.value}"


def event_from_mapping(event: Mapping[str, Any]) -> AlertEvent:
    """The :class:`AlertEvent` back from its JSON form, for :func:`render_text`."""
    return AlertEvent.from_dict(event)


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:.") + "…"


def subject(event: Mapping[str, Any], prefix: str = "[crisiswatch]") -> str:
    notice = oncall_text.headline(event)
    head = (f"{prefix} " if prefix else "") + (f"{notice.lower().replace('crisis ', '')}: " if notice else "")
    severity = str(event["severity"]).upper()
    summary = _shorten(_one_line(event.get("summary") or ""), SUBJECT_SUMMARY_CHARS)
    return _one_line(f"{head}{severity} {event['status']}: {event['brand']} — {summary}")


def _num(value: Any, fmt: str = "{:,}") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    if isinstance(value, float) and fmt == "{:,}":
        fmt = "{:,.1f}" if abs(value) < 1000 else "{:,.0f}"
    return fmt.format(value)


def _pct(value: Any) -> str:
    return _num(value, "{:.0%}")


def _ratio(value: Any) -> str:
    return _num(value, "{:.1f}×")


def _share_ratio(now: Any, usual: Any) -> Any:
    if isinstance(now, (int, float)) and isinstance(usual, (int, float)) and usual > 0:
        return now / usual
    return None


def _when(stamp: Any) -> str:
    """``2026-11-24T02:05:00Z`` → ``2026-11-24 02:05 UTC`` (as given if it is not in that form)."""
    text = str(stamp or "")
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d):\d\dZ", text)
    return f"{m[1]} {m[2]} UTC" if m else text


def _http_url(url: Any) -> str | None:
    text = str(url or "").strip()
    return text if re.match(r"https?://", text, re.IGNORECASE) and not re.search(r"\s", text) else None


_FONT = "font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_H2 = (f"{_FONT};font-size:13px;font-weight:700;letter-spacing:.04em;text-transform:uppercase;"
       "color:#6b7280;margin:24px 0 8px")
_TD = "padding:6px 10px;border-bottom:1px solid #e5e7eb;font-size:14px;color:#111827"
_TH = "padding:6px 10px;border-bottom:2px solid #d1d5db;font-size:12px;color:#6b7280;text-align:right;font-weight:600"


def render_html(event: Mapping[str, Any]) -> str:
    """The HTML part: the same content as :func:`render_text`, laid out for a mail client.

    Everything taken from the event is escaped; styles are inline; the layout is
    a single 640-px table, which survives Outlook, Gmail and Apple Mail alike.
    """
    e = html.escape
    status = str(event["status"])
    severity = str(event["severity"])
    color = _RESOLVED_COLOR if status == Status.RESOLVED.value else _SEVERITY_COLOR.get(severity, "#374151")
    stats: Mapping[str, Any] = event.get("stats") or {}
    evidence: Mapping[str, Any] = event.get("evidence") or {}
    title = (oncall_text.headline(event) or "").capitalize() or _TITLE.get(status, status.capitalize())
    summary = str(event.get("summary") or "")
    oncall = oncall_text.lines(event)

    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}: {e(str(event['brand']))}</title></head>",
        f'<body style="margin:0;padding:0;background:#f3f4f6;{_FONT}">',
        f'<div style="display:none;max-height:0;overflow:hidden;opacity:0">{e(_shorten(_one_line(summary), 140))}</div>',
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6">'
        '<tr><td align="center" style="padding:24px 12px">',
        '<table role="presentation" width="640" cellpadding="0" cellspacing="0" '
        'style="max-width:640px;width:100%;background:#ffffff;border-radius:8px;overflow:hidden;'
        'border:1px solid #e5e7eb">',
        # headline
        f'<tr><td style="background:{color};padding:18px 24px;color:#ffffff">'
        f'<div style="{_FONT};font-size:12px;font-weight:700;letter-spacing:.08em;text-transform:uppercase;'
        f'opacity:.9">{e(severity.upper())} · {e(status)}</div>'
        f'<div style="{_FONT};font-size:22px;font-weight:700;margin-top:4px">{e(title)}: '
        f"{e(str(event['brand']))}</div>"
        f'<div style="{_FONT};font-size:13px;margin-top:6px;opacity:.9">{e(_when(event.get("at")))}'
        f' · crisis since {e(_when(event.get("started_at")))}</div></td></tr>',
        f'<tr><td style="padding:20px 24px 24px;{_FONT};color:#111827">',
        f'<p style="margin:0;font-size:16px;line-height:1.5">{e(summary)}</p>',
    ]
    if oncall:
        parts.append('<div style="margin:14px 0 0;padding:10px 14px;border-radius:6px;background:#fef3c7;'
                     'color:#78350f;font-size:14px;line-height:1.5">'
                     + "<br>".join(f"<b>{e(x)}</b>" if i == 0 else e(x) for i, x in enumerate(oncall)) + "</div>")

    # the numbers against the baseline
    window = stats.get("window_minutes")
    rows = [
        ("Mentions", _num(stats.get("mentions")), _num(stats.get("baseline_mentions")),
         _ratio(stats.get("volume_ratio"))),
        ("Negative mentions", _num(stats.get("negatives")), _num(stats.get("baseline_negatives")),
         _ratio(_share_ratio(stats.get("negatives"), stats.get("baseline_negatives")))),
        # what the tests count: an author once, a cascade of copies as one voice (absent in older events)
        *([("Independent negative voices", _num(stats.get("negative_voices")), _num(stats.get("baseline_voices")),
            _ratio(stats.get("negative_ratio")))] if stats.get("negative_voices") is not None else []),
        ("Negative share", _pct(stats.get("negative_share")), _pct(stats.get("baseline_negative_share")),
         _ratio(_share_ratio(stats.get("negative_share"), stats.get("baseline_negative_share")))),
        ("Reach of negative mentions", _num(stats.get("negative_reach")), "–", "–"),
    ]
    parts.append(f'<h2 style="{_H2}">The numbers'
                 + (f" · last {e(_num(window))} min" if window is not None else "") + "</h2>")
    parts.append('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
                 'style="border-collapse:collapse">'
                 f'<tr><th style="{_TH};text-align:left"></th><th style="{_TH}">Now</th>'
                 f'<th style="{_TH}">Usually</th><th style="{_TH}">Ratio</th></tr>')
    for label, now, usual, ratio in rows:
        parts.append(f'<tr><td style="{_TD}">{e(label)}</td>'
                     f'<td style="{_TD};text-align:right;font-weight:700">{e(now)}</td>'
                     f'<td style="{_TD};text-align:right;color:#6b7280">{e(usual)}</td>'
                     f'<td style="{_TD};text-align:right">{e(ratio)}</td></tr>')
    parts.append("</table>")
    if isinstance(stats.get("duration_minutes"), (int, float)):
        verb = "lasted" if status == Status.RESOLVED.value else "running for"
        parts.append(f'<p style="margin:8px 0 0;font-size:13px;color:#6b7280">Crisis {verb} '
                     f'{e(_num(stats["duration_minutes"]))} min.</p>')

    terms = evidence.get("terms") or []
    sources = evidence.get("sources") or {}
    if terms or sources:
        parts.append(f'<h2 style="{_H2}">What people are talking about</h2>')
    if terms:
        chips = "".join(
            f'<span style="display:inline-block;margin:0 6px 6px 0;padding:3px 10px;border-radius:12px;'
            f'background:#fee2e2;color:#7f1d1d;font-size:14px">{e(str(t.get("term", "")))}'
            f' <span style="color:#991b1b;opacity:.7">({e(_num(t.get("mentions")))})</span></span>'
            for t in terms if isinstance(t, Mapping))
        parts.append(f"<div>{chips}</div>")
    if sources:
        listed = ", ".join(f"{e(str(k))} {e(_num(v))}" for k, v in dict(sources).items())
        parts.append(f'<p style="margin:6px 0 0;font-size:13px;color:#6b7280">Sources: {listed}</p>')

    mentions = [m for m in evidence.get("mentions") or [] if isinstance(m, Mapping)]
    if mentions:
        parts.append(f'<h2 style="{_H2}">Representative mentions</h2>')
        for m in mentions:
            meta = [e(str(m.get("author") or "?")), e(str(m.get("source") or "?"))]
            if m.get("reach") is not None:
                meta.append(f"reach {e(_num(m.get('reach')))}")
            url = _http_url(m.get("url"))
            if url:
                meta.append(f'<a href="{e(url)}" style="color:#2563eb">open</a>')
            parts.append(
                '<blockquote style="margin:0 0 10px;padding:10px 14px;border-left:4px solid '
                f'{color};background:#f9fafb;font-size:15px;line-height:1.45;color:#111827">'
                f"{e(_shorten(_one_line(m.get('text', '')), 600))}"
                f'<div style="margin-top:6px;font-size:12px;color:#6b7280">— {" · ".join(meta)}</div>'
                "</blockquote>")

    playbook = [str(s) for s in event.get("playbook") or []]
    if playbook:
        parts.append(f'<h2 style="{_H2}">First steps</h2>')
        parts.append('<ol style="margin:0;padding-left:22px;font-size:15px;line-height:1.5">'
                     + "".join(f'<li style="margin:0 0 6px">{e(s)}</li>' for s in playbook) + "</ol>")

    parts.append(
        '</td></tr><tr><td style="padding:12px 24px;background:#f9fafb;border-top:1px solid #e5e7eb;'
        f'font-size:12px;color:#6b7280;{_FONT}">'
        f'Crisis <code style="font-size:12px">{e(str(event.get("crisis_id", "")))}</code> · '
        f'alert <code style="font-size:12px">{e(str(event["id"]))}</code><br>Sent by crisiswatch.</td></tr>'
        "</table></td></tr></table></body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------
# The notifier


class EmailNotifier:
    """Sends each alert event as one e-mail to ``to`` (see the module docstring)."""

    def __init__(self, name: str, *, host: str, port: int, from_addr: str, to: Sequence[str],
                 starttls: bool = True, use_ssl: bool = False, ca_file: str | None = None,
                 username: str | None = None, password: str | None = None,
                 subject_prefix: str = "[crisiswatch]", timeout_s: float = 10.0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.from_addr = from_addr
        self.to = tuple(to)
        self.starttls = starttls and not use_ssl
        self.use_ssl = use_ssl
        self.ca_file = ca_file
        self.username = username
        self.__password = password
        self.subject_prefix = subject_prefix
        self.timeout_s = timeout_s
        self.sender = parseaddr(from_addr)[1]
        self.recipients = tuple(parseaddr(a)[1] for a in self.to)
        domain = self.sender.rpartition("@")[2]
        self.message_id_domain = domain if _DOMAIN.fullmatch(domain) else "crisiswatch.invalid"

    def __repr__(self) -> str:
        tls = "ssl" if self.use_ssl else "starttls" if self.starttls else "none"
        auth = f"{self.username!r} (password set)" if self.username else "none"
        return (f"EmailNotifier(name={self.name!r}, host={self.host!r}, port={self.port}, tls={tls}, "
                f"from={self.from_addr!r}, to={list(self.to)!r}, auth={auth})")

    # -- message ------------------------------------------------------------

    def message(self, event: Mapping[str, Any]) -> EmailMessage:
        """The message for one event (no Date header: :meth:`send` adds it)."""
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["Subject"] = subject(event, self.subject_prefix)
        msg["From"] = self.from_addr
        msg["To"] = ", ".join(self.to)
        msg["Message-ID"] = message_id(oncall_text.notice_id(event), self.message_id_domain)
        if event["status"] != Status.TRIGGERED.value:
            parent = message_id(triggered_alert_id(str(event["crisis_id"])), self.message_id_domain)
            msg["In-Reply-To"] = parent
            msg["References"] = parent
        msg["Auto-Submitted"] = "auto-generated"
        msg[ALERT_ID_HEADER] = _one_line(event["id"])
        msg["X-Crisiswatch-Crisis-Id"] = _one_line(event["crisis_id"])
        msg["X-Crisiswatch-Severity"] = _one_line(event["severity"])
        if event["severity"] in (Severity.ERROR.value, Severity.CRITICAL.value) \
                and event["status"] != Status.RESOLVED.value:
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        oncall = "".join(f"  on call : {x}\n" for x in oncall_text.lines(event))
        msg.set_content(render_text(event_from_mapping(event)) + "\n" + oncall)
        msg.add_alternative(render_html(event), subtype="html")
        return msg

    # -- delivery -----------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _fail(self, what: str, retryable: bool) -> NotifierError:
        text = f"{self.name}: {what} (smtp {self.host}:{self.port})"
        pw = self.__password
        if pw:
            text = text.replace(pw, "***")
        return NotifierError(text, retryable=retryable)

    def send(self, event: Mapping[str, Any]) -> None:
        try:
            msg = self.message(event)
        except (KeyError, ValueError, TypeError) as exc:
            raise self._fail(f"malformed alert event: {type(exc).__name__}: {exc}", retryable=False) from None
        msg["Date"] = formatdate(usegmt=True)
        refused = self._deliver(msg)
        if refused:
            codes = {addr: code for addr, (code, _text) in refused.items()}
            detail = "; ".join(f"{addr}: {code} {_reply(text)}" for addr, (code, text) in refused.items())
            accepted = len(self.recipients) - len(refused)
            raise self._fail(f"sent to {accepted} recipient(s) but refused for {detail}",
                             retryable=any(400 <= c < 500 for c in codes.values()))

    def _deliver(self, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
        smtp: smtplib.SMTP | None = None
        timeout = attempt_timeout(self.timeout_s)  # longer on each retry, as for the HTTP receivers
        try:
            if self.use_ssl:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=timeout)
                if self.starttls:
                    smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self.__password or "")
            refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=list(self.recipients))
        except smtplib.SMTPRecipientsRefused as exc:
            detail = "; ".join(f"{addr}: {code} {_reply(text)}" for addr, (code, text) in exc.recipients.items())
            raise self._fail(f"all recipients refused: {detail}",
                             retryable=any(400 <= code < 500 for code, _ in exc.recipients.values())) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise self._fail(f"server disconnected: {exc}", retryable=True) from None
        except smtplib.SMTPNotSupportedError as exc:
            fix = ("set starttls = false only for a relay on a trusted network, or use ssl = true"
                   if "STARTTLS" in str(exc) else "remove username/password_env if the server needs no login")
            raise self._fail(f"{exc}: {fix}", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            raise self._fail(f"{_stage(exc)} {code} {_reply(exc.smtp_error)}",
                             retryable=not 500 <= code < 600) from None
        except smtplib.SMTPException as exc:
            raise self._fail(f"SMTP error: {exc}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise self._fail(f"TLS certificate not trusted: {exc.verify_message or exc}; set ca_file to the "
                             "server's CA bundle", retryable=False) from None
        except TimeoutError as exc:
            raise self._fail(f"timed out after {timeout:g} s: {exc}", retryable=True) from None
        except OSError as exc:
            raise self._fail(f"connection failed: {type(exc).__name__}: {exc}", retryable=True) from None
        finally:
            if smtp is not None:
                _quit_quietly(smtp)
        return dict(refused)


def _reply(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _shorten(_one_line(text), 200)


def _stage(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "authentication failed:"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused:"
    if isinstance(exc, smtplib.SMTPDataError):
        return "message refused:"
    if isinstance(exc, smtplib.SMTPConnectError):
        return "connection refused by the server:"
    if isinstance(exc, smtplib.SMTPHeloError):
        return "EHLO/HELO refused:"
    return "server replied"


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    """QUIT after the message is accepted; a failure here must not turn a delivery into a retry."""
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001 - the outcome was decided before QUIT
        try:
            smtp.close()
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------
# Config


def _address(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise NotifierConfigError(f"{where}.{key} must be an e-mail address such as \"alerts@example.com\"")
    addr = parseaddr(value)[1]
    if not _ADDRESS.fullmatch(addr or ""):
        raise NotifierConfigError(f"{where}.{key}: {value!r} is not an e-mail address; write it as "
                                  "\"alerts@example.com\" or \"Crisiswatch <alerts@example.com>\"")
    return value.strip()


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise NotifierConfigError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def build(table: Mapping[str, Any], where: str, env: Mapping[str, str]) -> EmailNotifier:
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise NotifierConfigError(f"{where}.{unknown[0]} is not an e-mail receiver option; the options are "
                                  f"{', '.join(sorted(KEYS - {'type', 'name'}))}")
    name = table.get("name", "email")
    if not isinstance(name, str) or not name.strip():
        raise NotifierConfigError(f"{where}.name must be a non-empty string")

    host = table.get("host")
    if not isinstance(host, str) or not host.strip() or re.search(r"\s", host):
        raise NotifierConfigError(f"{where}.host is required: the SMTP server's name, e.g. \"smtp.example.com\"")

    use_ssl = _bool(table, "ssl", where, False)
    if use_ssl and table.get("starttls") is True:
        raise NotifierConfigError(f"{where}: ssl = true (implicit TLS, port 465) and starttls = true exclude each "
                                  "other; keep one")
    starttls = _bool(table, "starttls", where, True) and not use_ssl

    port = table.get("port", 465 if use_ssl else 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise NotifierConfigError(f"{where}.port must be a port number (587 for STARTTLS, 465 with ssl = true)")

    ca_file = table.get("ca_file")
    if ca_file is not None:
        if not isinstance(ca_file, str) or not os.path.isfile(ca_file):
            raise NotifierConfigError(f"{where}.ca_file must name a PEM file of CA certificates, got {ca_file!r}")
        if not (starttls or use_ssl):
            raise NotifierConfigError(f"{where}.ca_file needs TLS: set starttls = true or ssl = true")

    if "from_addr" not in table:
        raise NotifierConfigError(f"{where}.from_addr is required: the sender, e.g. "
                                  "\"Crisiswatch <crisiswatch@example.com>\"")
    from_addr = _address(table["from_addr"], where, "from_addr")

    to = table.get("to")
    if isinstance(to, str):
        raise NotifierConfigError(f"{where}.to must be a list of addresses: to = [{to!r}]")
    if not isinstance(to, list) or not to:
        raise NotifierConfigError(f"{where}.to is required: a list of addresses, e.g. to = [\"oncall@example.com\"]")
    recipients = [_address(a, where, f"to[{i}]") for i, a in enumerate(to)]

    username = table.get("username")
    password: str | None = None
    if username is not None:
        if not isinstance(username, str) or not username:
            raise NotifierConfigError(f"{where}.username must be a non-empty string (or left out for no login)")
        password = secret(table, "password_env", where, env)
        if not (starttls or use_ssl or is_loopback(host)):
            raise NotifierConfigError(f"{where}: refusing to send the SMTP password to {host} unencrypted; "
                                      "set starttls = true or ssl = true")
    elif "password_env" in table:
        raise NotifierConfigError(f"{where}.password_env is set but username is not: set username too, or remove "
                                  "password_env for a server without login")

    prefix = table.get("subject_prefix", "[crisiswatch]")
    if not isinstance(prefix, str) or "\n" in prefix or "\r" in prefix:
        raise NotifierConfigError(f"{where}.subject_prefix must be a one-line string, e.g. \"[crisiswatch]\"")

    timeout = table.get("timeout_s", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise NotifierConfigError(f"{where}.timeout_s must be a number of seconds in (0, 300], e.g. 10")

    return EmailNotifier(name, host=host.strip(), port=port, from_addr=from_addr, to=recipients,
                         starttls=starttls, use_ssl=use_ssl, ca_file=ca_file, username=username,
                         password=password, subject_prefix=prefix.strip(), timeout_s=float(timeout))


def example_html() -> str:
    """The HTML part for the demo's first (triggered) event as the notify role sends it: the docs' example
    (``python -m listener.notifiers.email > docs/email-example.html``)."""
    from connectors.simulator import demo_simulation
    from detectors.events import from_iso, iso
    from listener.offline import run_items
    from listener.pipeline import PipelineSettings

    event = run_items(demo_simulation().items(), PipelineSettings()).events[0].to_dict()
    return render_html(oncall_text.example(event, first_seen=iso(from_iso(str(event["at"])) + 15 * 60)))


if __name__ == "__main__":
    import sys

    sys.stdout.write(example_html())
