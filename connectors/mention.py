"""The wire format of a mention: the single contract between connectors and listener.

A mention travels as one UTF-8 JSON object on the ``mentions`` topic, keyed by
brand (see docs/design.md)::

    {"v": 1, "id": "reddit:t3_abc", "source": "reddit", "brand": "acme",
     "text": "...", "created_at": "2026-11-23T14:02:11Z", "author": "u/x",
     "url": "https://...", "lang": "en", "reach": 1234, "is_repost": false}

``id``, ``source``, ``brand``, ``text`` and ``created_at`` are required.
Unknown fields are ignored so that producers can add fields before consumers
know them; an unknown ``v`` is refused, because its meaning cannot be guessed.

Control characters (C0 but tab, newline and carriage return; DEL; C1) are
refused in the identifying fields (``id``, ``source``, ``brand``: reason
``invalid_value``) and replaced by a space in ``text`` and ``author``: a post
is not refused for a stray byte, but an escape sequence never reaches a
terminal, a log line or an alert.  The identifying fields also refuse
invisible and bidirectional formatting characters (Unicode category Cf, such
as U+200B zero-width space or U+202E right-to-left override, and the line and
paragraph separators): ``acme`` and ``ac<U+200B>me`` would be two brands that
look the same, and a right-to-left override makes a name display as another.
``brand`` and ``source`` are names that end up in URLs (an action's
``https://scheduler.example.com/api/brands/$brand/pause``), file names and
metric labels, so they also refuse every control character, ``/``, ``\\``,
``..`` and ``.`` alone (``/api/brands/../pause`` is ``/api/pause``); ``id``
is often a URL or a URI and keeps its ``/``, but refuses a ``..`` path
segment.  Each refusal is ``invalid_value`` and names the field.  A timestamp later than the caller's
``not_after`` (the listener passes its wall clock plus
``listener.max_future_minutes``) is refused as ``future_timestamp``: one
mention dated 2090 would otherwise push its brand's event-time watermark
decades ahead and make every later mention "late".

:func:`decode` never raises anything but :class:`MentionError`, whose
``reason`` is a short stable code (used as the dead-letter reason and as a
metric label) and whose message names the field and what was wrong.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import NamedTuple

import orjson

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_TEXT_CHARS = 10_000
MAX_FIELD_CHARS = 2_048
EARLIEST_YEAR = 2000
LATEST_YEAR = 2100

_REQUIRED_STR = ("id", "source", "brand", "text")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_FORMAT_CHARS = ("\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e"
                 "\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
                 "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f")
"""Unicode categories Cf (format: zero-width, bidi controls, soft hyphen, tags...), Zl, Zp and Cs (lone
surrogates), as of Unicode 15; a test checks that this covers them for the running Python's Unicode."""
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.\.(?:[/\\]|$)")
"""A ``..`` path segment, which ``id`` may not contain."""
_BAD_NAME = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_FORMAT_CHARS}/\\\\]|\\.\\.|^\\s*\\.\\s*$")
"""What ``brand`` and ``source`` may not contain: any control character, an invisible one, ``/``, ``\\``,
``..``, or be ``.`` alone."""
_OPTIONAL_STR = ("author", "url", "lang")
_FORMAT = re.compile(f"[{_FORMAT_CHARS}]")
_CONTROL_ANY = re.compile("[\x00-\x1f\x7f-\x9f]")


class MentionError(ValueError):
    """A message that is not a valid mention.

    ``reason`` is one of: ``too_large``, ``not_utf8``, ``invalid_json``,
    ``not_an_object``, ``unsupported_version``, ``missing_field``,
    ``wrong_type``, ``invalid_value``, ``bad_timestamp``, ``future_timestamp``.
    """

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


class Mention(NamedTuple):
    """One social post that mentions one brand (a post naming two brands is two mentions).

    Immutable.  A named tuple rather than a frozen dataclass because the
    listener builds tens of thousands a second and a frozen dataclass costs
    four times as much to construct (measured: 1.3 µs against 0.3 µs).
    """

    id: str
    source: str
    brand: str
    text: str
    created_at: datetime
    author: str | None = None
    url: str | None = None
    lang: str | None = None
    reach: int | None = None
    is_repost: bool = False

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "v": WIRE_VERSION,
            "id": self.id,
            "source": self.source,
            "brand": self.brand,
            "text": self.text,
            "created_at": format_time(self.created_at),
        }
        for name in ("author", "url", "lang", "reach"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.is_repost:
            out["is_repost"] = True
        return out


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix and whole seconds (the wire's time format)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, field: str = "created_at") -> datetime:
    """Parse an ISO-8601 timestamp that carries a timezone; return it in UTC."""
    if not isinstance(value, str):
        raise MentionError("wrong_type", f"{field} must be an ISO-8601 string, got {type(value).__name__}", field)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MentionError(
            "bad_timestamp", f"{field} is not an ISO-8601 timestamp: {value[:40]!r}", field
        ) from None
    if moment.tzinfo is None:
        raise MentionError(
            "bad_timestamp", f"{field} has no timezone: {value[:40]!r} (add 'Z' for UTC)", field
        )
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise MentionError(
            "bad_timestamp", f"{field} is outside {EARLIEST_YEAR}..{LATEST_YEAR}: {value[:40]!r}", field
        )
    return moment.astimezone(timezone.utc)


def encode(mention: Mention) -> bytes:
    """Serialise a mention to its wire bytes."""
    return orjson.dumps(mention.to_dict())


def decode(raw: bytes | bytearray | memoryview | None, not_after: float | None = None) -> Mention:
    """Parse and validate wire bytes; raise :class:`MentionError` on any defect.

    ``not_after``: the latest acceptable ``created_at`` (epoch seconds); later is ``future_timestamp``.
    """
    if raw is None:
        raise MentionError("invalid_json", "message has no value (null / tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MentionError("too_large", f"message is {len(raw)} bytes, the limit is {MAX_MESSAGE_BYTES}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _is_bad_utf8(raw):
            raise MentionError("not_utf8", "message is not valid UTF-8") from None
        raise MentionError("invalid_json", f"message is not valid JSON: {exc}") from None
    fast = _fast(obj)
    mention = fast if fast is not None else _validate(obj)
    if not_after is not None and mention.created_at.timestamp() > not_after:
        raise MentionError("future_timestamp", f"created_at {format_time(mention.created_at)} is in the future "
                           f"(later than {format_time(datetime.fromtimestamp(not_after, timezone.utc))})",
                           "created_at")
    return mention


def from_dict(obj: object) -> Mention:
    """Validate an already-parsed JSON object (used by decode and by file replay)."""
    fast = _fast(obj)
    return fast if fast is not None else _validate(obj)


def _fast(obj: object) -> Mention | None:
    """The common case in a few checks; ``None`` sends anything unusual to the full validator.

    Accepts exactly what :func:`_validate` accepts (a property test checks that
    the two agree), so the full validator only runs to explain a rejection or
    for rare shapes (an empty string, an over-long field, a non-UTC offset).
    """
    if type(obj) is not dict:
        return None
    get = obj.get
    mention_id, source, brand, text, created = get("id"), get("source"), get("brand"), get("text"), get("created_at")
    if not (type(mention_id) is str and type(source) is str and type(brand) is str and type(text) is str
            and type(created) is str and 0 < len(mention_id) <= MAX_FIELD_CHARS and 0 < len(source) <= MAX_FIELD_CHARS
            and 0 < len(brand) <= 200 and len(text) <= MAX_TEXT_CHARS and created.endswith("Z")):
        return None
    version = get("v", WIRE_VERSION)
    if version != WIRE_VERSION or type(version) is not int:
        return None
    if not (mention_id.strip() and source.strip() and brand.strip()):
        return None
    names = source + brand  # isprintable: no control, format, separator or surrogate character (C code, fast)
    if (not (mention_id.isprintable() and names.isprintable()) or "/" in names or "\\" in names or ".." in source
            or ".." in brand or ".." in mention_id or source.strip() == "." or brand.strip() == "." or ":" in brand):
        return None  # or refused: the full validator says which
    author, url, lang, reach, repost = get("author"), get("url"), get("lang"), get("reach"), get("is_repost", False)
    if not ((author is None or type(author) is str and len(author) <= MAX_FIELD_CHARS)
            and (url is None or type(url) is str and len(url) <= MAX_FIELD_CHARS)
            and (lang is None or type(lang) is str and len(lang) <= MAX_FIELD_CHARS)
            and (reach is None or type(reach) is int and reach >= 0)
            and type(repost) is bool):
        return None
    try:
        moment = datetime.fromisoformat(created)
    except ValueError:
        return None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        return None
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    if author is not None and _CONTROL.search(author):
        author = _CONTROL.sub(" ", author)
    return Mention(mention_id, source, brand, text, moment, author, url, lang, reach, repost)


def _validate(obj: object) -> Mention:
    """Full validation with a precise error for the first defect found."""
    if not isinstance(obj, dict):
        raise MentionError("not_an_object", f"message must be a JSON object, got {type(obj).__name__}")
    version = obj.get("v", WIRE_VERSION)
    if version != WIRE_VERSION or isinstance(version, bool):
        raise MentionError("unsupported_version", f"v={version!r} is not supported (this reader knows v=1)", "v")
    values = []
    for field in _REQUIRED_STR:
        value = obj.get(field)
        if value is None:
            raise MentionError("missing_field", f"{field} is required", field)
        if type(value) is not str:
            raise MentionError("wrong_type", f"{field} must be a string, got {type(value).__name__}", field)
        values.append(value)
    mention_id, source, brand, text = values
    _check_short("id", mention_id)
    _check_short("source", source)
    _check_short("brand", brand, limit=200)
    check_name("source", source)
    check_name("brand", brand)
    _check_id(mention_id)
    if len(text) > MAX_TEXT_CHARS:
        raise MentionError("too_large", f"text is {len(text)} characters, the limit is {MAX_TEXT_CHARS}", "text")
    if "created_at" not in obj:
        raise MentionError("missing_field", "created_at is required", "created_at")
    created_at = parse_time(obj["created_at"])
    optional: dict[str, str | None] = {}
    for field in _OPTIONAL_STR:
        value = obj.get(field)
        if value is not None and type(value) is not str:
            raise MentionError("wrong_type", f"{field} must be a string, got {type(value).__name__}", field)
        if value is not None and len(value) > MAX_FIELD_CHARS:
            raise MentionError("too_large", f"{field} is longer than {MAX_FIELD_CHARS} characters", field)
        optional[field] = value
    reach = obj.get("reach")
    if reach is not None:
        if type(reach) is not int:
            raise MentionError("wrong_type", f"reach must be an integer, got {type(reach).__name__}", "reach")
        if reach < 0:
            raise MentionError("invalid_value", f"reach must be >= 0, got {reach}", "reach")
    is_repost = obj.get("is_repost", False)
    if type(is_repost) is not bool:
        raise MentionError("wrong_type", f"is_repost must be true or false, got {type(is_repost).__name__}", "is_repost")
    author = optional["author"]
    return Mention(
        id=mention_id,
        source=source,
        brand=brand,
        text=_CONTROL.sub(" ", text),
        created_at=created_at,
        author=_CONTROL.sub(" ", author) if author is not None else None,
        url=optional["url"],
        lang=optional["lang"],
        reach=reach,
        is_repost=is_repost,
    )


def _check_short(field: str, value: str, limit: int = MAX_FIELD_CHARS) -> None:
    if not value.strip():
        raise MentionError("invalid_value", f"{field} must not be empty", field)
    if _CONTROL.search(value):
        raise MentionError("invalid_value", f"{field} must not contain control characters", field)
    _check_invisible(field, value)
    if len(value) > limit:
        raise MentionError("too_large", f"{field} is longer than {limit} characters", field)


def check_name(field: str, value: str) -> None:
    """A brand or source name: no control or invisible character, no ``/``, ``\\``, ``..``, not ``.`` alone
    (names end up in URLs, file names and labels), and a brand (``brand``, or a ``[[brands]]`` ``name``) no
    ``:``.  Raises MentionError ``invalid_value`` naming ``field``."""
    if field in ("brand", "name") and ":" in value:
        # alert and notice ids are "<brand>:<minute>:..." and "<brand>:volume:<minute>": brand "acme:volume" would
        # give crisis ids equal to brand "acme"'s volume-notice ids
        raise MentionError("invalid_value", f"{field} must not contain ':' (it separates the parts of alert ids): "
                           f"got {value[:80]!r}", field)
    found = _BAD_NAME.search(value)
    if not found:
        return
    if _CONTROL_ANY.search(value):
        raise MentionError("invalid_value", f"{field} must not contain control characters", field)
    _check_invisible(field, value)
    raise MentionError("invalid_value", f"{field} must not contain '/', '\\' or '..' nor be '.' (names are used "
                       f"in URLs and file names): got {value[:80]!r}", field)


def _check_invisible(field: str, value: str) -> None:
    hidden = _FORMAT.search(value)
    if hidden:
        raise MentionError("invalid_value", f"{field} must not contain invisible or bidirectional formatting "
                           f"characters (U+{ord(hidden.group()):04X} at {hidden.start()})", field)


def _check_id(value: str) -> None:
    if _DOT_SEGMENT.search(value):
        raise MentionError("invalid_value", "id must not contain a '..' path segment", "id")


def _is_bad_utf8(raw: bytes | bytearray | memoryview) -> bool:
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
