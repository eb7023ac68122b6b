from __future__ import annotations

import sys
import unicodedata
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mention import _CONTROL as CONTROL
from connectors.mention import MAX_MESSAGE_BYTES, Mention, MentionError, decode, encode, format_time

VALID = {
    "v": 1, "id": "reddit:t3_abc", "source": "reddit", "brand": "acme", "text": "acme lost my order",
    "created_at": "2026-11-23T14:02:11Z", "author": "u/x", "url": "https://example.com/x", "lang": "en",
    "reach": 1234, "is_repost": False,
}


def raw(**changes: object) -> bytes:
    obj = {**VALID, **changes}
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...})


def test_decodes_every_field() -> None:
    m = decode(raw())
    assert m == Mention(id="reddit:t3_abc", source="reddit", brand="acme", text="acme lost my order",
                        created_at=datetime(2026, 11, 23, 14, 2, 11, tzinfo=timezone.utc), author="u/x",
                        url="https://example.com/x", lang="en", reach=1234, is_repost=False)


def test_round_trip_keeps_everything() -> None:
    m = decode(raw(is_repost=True))
    assert decode(encode(m)) == m


def test_optional_fields_may_be_absent_and_unknown_fields_are_ignored() -> None:
    m = decode(orjson.dumps({"id": "1", "source": "x", "brand": "b", "text": "t",
                             "created_at": "2026-01-01T00:00:00+02:00", "future_field": [1, 2]}))
    assert m.author is None and m.reach is None and not m.is_repost
    assert format_time(m.created_at) == "2025-12-31T22:00:00Z"


@pytest.mark.parametrize(
    "payload, reason, field",
    [
        (b"{not json", "invalid_json", None),
        (b"\xff\xfe{}", "not_utf8", None),
        (b"[1, 2]", "not_an_object", None),
        (raw(v=2), "unsupported_version", "v"),
        (raw(id=...), "missing_field", "id"),
        (raw(created_at=...), "missing_field", "created_at"),
        (raw(brand=5), "wrong_type", "brand"),
        (raw(text=None), "missing_field", "text"),
        (raw(reach="12"), "wrong_type", "reach"),
        (raw(reach=True), "wrong_type", "reach"),
        (raw(reach=-1), "invalid_value", "reach"),
        (raw(is_repost="yes"), "wrong_type", "is_repost"),
        (raw(brand="  "), "invalid_value", "brand"),
        (raw(created_at="yesterday"), "bad_timestamp", "created_at"),
        (raw(created_at="2026-11-23T14:02:11"), "bad_timestamp", "created_at"),
        (raw(created_at="1970-01-01T00:00:00Z"), "bad_timestamp", "created_at"),
        (raw(created_at=1700000000), "wrong_type", "created_at"),
        (raw(text="x" * 10_001), "too_large", "text"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too_large", None),
        (None, "invalid_json", None),
    ],
)
def test_invalid_messages_name_the_reason_and_field(payload: bytes | None, reason: str, field: str | None) -> None:
    with pytest.raises(MentionError) as info:
        decode(payload)
    assert info.value.reason == reason
    assert info.value.field == field
    if field:
        assert field in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_of_arbitrary_bytes_raises_only_mention_error(data: bytes) -> None:
    try:
        decode(data)
    except MentionError as exc:
        assert exc.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALID)), json_values, max_size=11))
def test_decode_of_arbitrary_objects_raises_only_mention_error(obj: dict) -> None:
    try:
        m = decode(orjson.dumps({**obj}))
    except MentionError:
        return
    assert isinstance(m, Mention)


def bad_name(name: str, brand: bool = False) -> bool:
    """The rule for brand and source names, written independently of connectors.mention."""
    return (any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name)
            or "/" in name or "\\" in name or ".." in name or name.strip() == "." or brand and ":" in name)


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.text(max_size=500),
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(timezone.utc)),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
)
def test_round_trip_property(brand: str, text: str, when: datetime, reach: int | None) -> None:
    m = Mention(id="x:1", source="x", brand=brand, text=text, created_at=when.replace(microsecond=0), reach=reach)
    if bad_name(brand, brand=True):
        with pytest.raises(MentionError, match="brand") as info:
            decode(encode(m))
        assert info.value.reason == "invalid_value" and info.value.field == "brand"
        return
    assert decode(encode(m)) == m._replace(text=CONTROL.sub(" ", text))


@pytest.mark.parametrize("text", ["\x1b[2J\x1b[31mpwned", "nul\x00byte", "c1\x85\x9b31m", "bell\x07"])
def test_control_characters_never_reach_a_terminal(text: str) -> None:
    m = decode(encode(Mention("x:1", "x", "acme", text, datetime(2026, 11, 23, tzinfo=timezone.utc),
                              author="@a\x1b]0;title\x07")))
    assert not CONTROL.search(m.text) and not CONTROL.search(m.author or "")
    assert "\n" in decode(encode(m._replace(text="two\nlines\tok"))).text  # tab, newline and CR are text


def test_a_future_timestamp_is_refused_only_past_the_given_bound() -> None:
    m = Mention("x:1", "x", "acme", "hi", datetime(2090, 1, 1, tzinfo=timezone.utc))
    bound = datetime(2026, 11, 24, 15, tzinfo=timezone.utc).timestamp()
    with pytest.raises(MentionError) as info:
        decode(encode(m), not_after=bound)
    assert (info.value.reason, info.value.field) == ("future_timestamp", "created_at")
    assert "2090-01-01T00:00:00Z" in str(info.value)
    assert decode(encode(m)) == m  # no bound: accepted (offline replays of any period)
    assert decode(encode(m._replace(created_at=datetime(2026, 11, 24, 14, tzinfo=timezone.utc))), not_after=bound)


@settings(max_examples=500, deadline=None)
@given(st.fixed_dictionaries(
    {"id": st.text(max_size=5), "source": st.sampled_from(["x", " ", ""]), "brand": st.text(max_size=3),
     "text": st.text(max_size=5), "created_at": st.sampled_from(["2026-11-23T14:02:11Z", "2026-11-23T14:02:11+01:00",
                                                                 "1999-01-01T00:00:00Z", "nope", "2026-11-23"])},
    optional={"v": json_values, "author": json_values, "url": json_values, "lang": json_values,
              "reach": json_values, "is_repost": json_values}))
def test_fast_path_agrees_with_the_full_validator(obj: dict) -> None:
    from connectors.mention import _fast, _validate

    fast = _fast(obj)
    try:
        full = _validate(obj)
    except MentionError:
        assert fast is None
        return
    assert fast is None or fast == full


@pytest.mark.parametrize("field, value, says", [
    ("brand", "..", "'..'"), ("brand", "acme/../pause", "'/'"), ("brand", "a/b", "'/'"), ("brand", "a\\b", "'/'"),
    ("brand", ".", "'.'"), ("brand", "acme\u202e", "U+202E"), ("brand", "ac\u200bme", "U+200B"),
    ("brand", "\u2066acme\u2069", "U+2066"), ("brand", "\ufeffacme", "U+FEFF"), ("brand", "ac\tme", "control"),
    ("brand", "acme\u2028", "U+2028"), ("brand", "acme\U000e0041", "U+E0041"),
    ("brand", "acme:volume", "':'"),  # its crisis ids would equal brand acme's volume-notice ids
    ("source", "../twitter", "'..'"), ("source", "twit\u200dter", "U+200D"), ("source", "x/y", "'/'"),
    ("id", "../pause", "'..' path segment"), ("id", "rss:https://e.x/a/../b", "'..' path segment"),
    ("id", "x:1\u202e", "U+202E"), ("id", "x:\u200b", "U+200B"),
])
def test_spoofing_or_path_names_are_refused_naming_the_field(field: str, value: str, says: str) -> None:
    with pytest.raises(MentionError) as info:
        decode(raw(**{field: value}))
    assert (info.value.reason, info.value.field) == ("invalid_value", field)
    assert field in str(info.value) and says in str(info.value)


@pytest.mark.parametrize("field, value", [
    ("brand", "café crème"), ("brand", "R&D <team>"), ("brand", "Acme Inc."), ("brand", "شركة"), ("brand", "株式会社"),
    ("source", "twitter"), ("source", "news.example.com"), ("source", "x:firehose"), ("id", "bluesky:at://did:plc:abc/app.bsky.feed.post/3k"),
    ("id", "rss:https://blog.example/2026/wait...what"), ("id", "mastodon:https://m.example/@a/1"), ("id", "a..b"),
    ("brand", "\U0001f600 emoji"),
])
def test_ordinary_names_and_url_ids_are_kept(field: str, value: str) -> None:
    assert getattr(decode(raw(**{field: value})), field) == value


def test_the_invisible_characters_cover_unicode_format_characters() -> None:
    from connectors.mention import _FORMAT

    missing = [hex(cp) for cp in range(sys.maxunicode + 1)
               if unicodedata.category(chr(cp)) in ("Cf", "Cs", "Zl", "Zp") and not _FORMAT.match(chr(cp))]
    assert missing == [], f"Unicode {unicodedata.unidata_version}: add these to _FORMAT_CHARS"
