"""Reddit posts and comments as a polling source: search queries and subreddit listings.

Each poll reads, for every configured *listing*, Reddit's newest-first JSON
``Listing`` pages through our :class:`~connectors.http.HttpClient` (budget,
backoff with jitter, ``Retry-After`` on 429):

* a query, sitewide: ``GET /search?q=...&sort=new&type=link``;
* a query inside subreddits (``restrict_sr = true``):
  ``GET /r/{sub}/search?q=...&sort=new&restrict_sr=1&type=link``;
* a subreddit: its posts ``GET /r/{sub}/new`` and, with ``include_comments``,
  its comments ``GET /r/{sub}/comments``.

Every request asks for ``limit=100`` (Reddit's maximum) and ``raw_json=1`` (so
``&``, ``<`` and ``>`` arrive unescaped) and pages on with ``after`` = the
fullname Reddit returns in ``data.after``.

Authentication.  With ``client_id_env`` and ``client_secret_env`` the source
uses OAuth2 "application only" access: ``POST {auth_url}`` with HTTP basic
auth ``client_id:client_secret`` and the form body
``grant_type=client_credentials``; the answer ``{"access_token", "token_type":
"bearer", "expires_in", "scope"}`` gives a token sent as ``Authorization:
bearer TOKEN`` to ``https://oauth.reddit.com`` (paths without ``.json``).  The
token is renewed shortly before ``expires_in`` runs out, and once more when a
request answers 401.  Reddit sometimes answers a refused grant with a 200 and
``{"error": ...}``: that is an error too.  Without credentials the source reads
the public ``https://www.reddit.com/....json`` endpoints at a low budget.

Rate limits.  Besides the ``requests_per_minute`` budget and 429 handling of
the HTTP client, every answer's ``X-Ratelimit-Remaining`` / ``X-Ratelimit-Reset``
/ ``X-Ratelimit-Used`` headers are read: with nothing left the source waits
until the window resets; with little left (< 10) it spreads the remaining
requests over the rest of the window.  The waits end early when the process
stops.  Every request carries a descriptive User-Agent, as Reddit's API rules
require (``<platform>:<app ID>:<version> (by /u/<reddit username>)``): set
``user_agent`` to one naming your Reddit account.

Cursor, restarts, no gaps and no duplicates.  Each listing keeps a cursor: the
fullname and ``created_utc`` of the newest item handed on.  A poll reads pages
backwards (newest first, ``after=...``) until a page reaches items older than
the cursor minus ``overlap_s`` (search results are indexed with a delay, and
posts approved by moderators appear late), or ``max_pages`` is spent.  The new
items are then handed on oldest first.  A persisted :class:`SeenIds` window
(shared by all the listings, so a post found by two queries is yielded once)
drops what overlaps.  An item counts as delivered once it has been handed
on: the cursor and the window are saved after every 100 items (a page),
after each listing, and when the generator is closed or the process stops —
so a restart resumes with neither gaps nor duplicates; after a hard crash the
items since the last save come again (at-least-once; the listener drops
duplicates by ``(source, id)``).  A walk that fails half-way (a page that does
not come after every retry) hands nothing on and moves no cursor: the next
poll walks again.  The very first poll of a listing (no cursor) reads only its
newest page — not years of history (an empty listing starts its cursor at the
time of that poll).  If a listing outruns ``max_pages`` pages
between two polls the older part is lost (Reddit's listings stop near 1000
items anyway); this is logged and counted as ``gaps`` in :meth:`health`.

Config (``[[sources]]`` table, ``type = "reddit"``), at least one of
``queries`` / ``subreddits``:

``queries``              list of search queries (Reddit search syntax, <= 512 chars); default none
``subreddits``           list of subreddit names (``acme``, ``r/acme`` or ``a+b``); default none
``restrict_sr``          true: search the ``queries`` only inside ``subreddits`` and do not read
                         the subreddits' whole listings; default false
``include_comments``     also read each subreddit's comments (``/r/{sub}/comments``); default true
``interval_s``           seconds between polls, default 60
``client_id_env``        environment variable holding the OAuth client id; default none (public mode)
``client_secret_env``    environment variable holding the OAuth client secret (both or neither)
``base_url``             API root, default ``https://oauth.reddit.com`` with OAuth,
                         ``https://www.reddit.com`` without
``auth_url``             token endpoint, default ``https://www.reddit.com/api/v1/access_token``
``requests_per_minute``  request budget, default 60 with OAuth, 10 without
``user_agent``           default ``python:crisiswatch:v0.1 (self-hosted social listening)``
``max_pages``            pages of 100 read per listing and poll at most, 1..10, default 10
``overlap_s``            how far before the cursor a poll looks again, seconds, default 300
``name``                 instance name (checkpoint, health), default ``"reddit"``

A post from a listing child (``kind`` t3 = link, t1 = comment):

* ``id`` = ``"reddit:"`` + the fullname (``name``, e.g. ``t3_abc``);
* ``text`` = ``title`` + blank line + ``selftext`` for a link (the markdown
  source, not ``selftext_html``), ``body`` for a comment; cut at 10,000 chars;
* ``created_at`` = ``created_utc`` (epoch seconds, UTC);
* ``author`` = ``"u/" + author`` (none for ``[deleted]``);
* ``url`` = ``"https://www.reddit.com" + permalink``;
* ``reach`` = ``score`` (net votes; a negative score counts as 0);
* ``is_repost`` = a crosspost (``crosspost_parent`` / ``crosspost_parent_list``);
* no ``lang`` (Reddit offers none).

A child that cannot be used — not an object, an unknown kind, no fullname, no
or a bad ``created_utc``, no title/body — is yielded as :class:`Rejected`
(``not_an_object``, ``unsupported_kind``, ``missing_field``, ``wrong_type``,
``bad_timestamp``) and remembered, so it goes to the dead-letter topic once.
An answer that is not a JSON ``Listing`` at all is an error of the poll (in
:meth:`health`), and the next poll tries again.

Documentation followed: Reddit's API rules and rate-limit headers (reddit
wiki "API", github.com/reddit-archive/reddit/wiki/API, and the r/redditdev
announcement "Formal ratelimiting headers"), "OAuth2" (Application Only OAuth,
``grant_type=client_credentials``, token retrieval and ``expires_in``) and
"OAuth2 Quick Start Example" of the same wiki, "JSON" (``Listing`` with
``before``/``after``/``children``, ``thing`` kinds t1/t3, ``created_utc``,
``name`` fullnames), the reddit API reference (www.reddit.com/dev/api:
``/search`` with ``q``, ``sort``, ``restrict_sr``, ``type``, ``limit``,
``after``; ``/r/{sub}/new``; ``/r/{sub}/comments``; ``raw_json``), and, to
check our reading, prawcore (``auth.py``: the token request and ``error`` in a
200 answer; ``rate_limit.py``: the header formats, e.g. a fractional
``x-ratelimit-remaining``).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from .checkpoint import CheckpointStore, DeferredCheckpoints, SeenIds
from .http import HttpClient, Response, SourceUnavailable
from .mention import EARLIEST_YEAR, LATEST_YEAR, MAX_FIELD_CHARS, MAX_TEXT_CHARS
from .options import take
from .post import Post
from .source import Item, Rejected, SourceConfigError, SourceContext, poll_forever

log = logging.getLogger(__name__)

TYPE = "reddit"
OAUTH_BASE_URL = "https://oauth.reddit.com"
PUBLIC_BASE_URL = "https://www.reddit.com"
AUTH_URL = "https://www.reddit.com/api/v1/access_token"
WEB_URL = "https://www.reddit.com"
USER_AGENT = "python:crisiswatch:v0.1 (self-hosted social listening)"
PAGE_LIMIT = 100
"""Reddit's maximum ``limit`` for a listing page."""
MAX_PAGES = 10
LOW_REMAINING = 10.0
"""Below this many requests left in Reddit's window, spread the rest over it."""
MAX_QUERY_CHARS = 512
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}(\+[A-Za-z0-9][A-Za-z0-9_]{1,20})*$")
_STATUS = re.compile(r"answered (\d{3})\s*$")


@dataclass(frozen=True, slots=True)
class Listing:
    """One newest-first listing the source follows."""

    key: str
    """Stable name, the checkpoint key: ``search:acme``, ``new:r/acme`` ..."""
    path: str
    """Path without ``.json`` (added in public mode)."""
    params: tuple[tuple[str, str], ...] = ()


def listings_for(queries: list[str], subreddits: list[str], restrict_sr: bool,
                 include_comments: bool) -> list[Listing]:
    out: list[Listing] = []
    if restrict_sr:
        for sub in subreddits:
            for q in queries:
                out.append(Listing(f"search:r/{sub}:{q}", f"/r/{sub}/search",
                                   (("q", q), ("sort", "new"), ("restrict_sr", "1"), ("type", "link"))))
        return out
    for q in queries:
        out.append(Listing(f"search:{q}", "/search", (("q", q), ("sort", "new"), ("type", "link"))))
    for sub in subreddits:
        out.append(Listing(f"new:r/{sub}", f"/r/{sub}/new"))
        if include_comments:
            out.append(Listing(f"comments:r/{sub}", f"/r/{sub}/comments"))
    return out


class _BadAnswer(RuntimeError):
    """A 200 answer that is not a Reddit Listing."""


class _Stopped(Exception):
    """The process is stopping: abandon the walk (nothing was handed on)."""


class RedditSource:
    def __init__(
        self,
        listings: list[Listing],
        http: HttpClient,
        store: CheckpointStore | DeferredCheckpoints,
        ctx: SourceContext | None = None,
        name: str = TYPE,
        credentials: tuple[str, str] | None = None,
        base_url: str | None = None,
        auth_url: str = AUTH_URL,
        interval_s: float = 60.0,
        max_pages: int = MAX_PAGES,
        overlap_s: float = 300.0,
        pause: Callable[[float], object] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.listings = listings
        self.http = http
        self.store = store
        self.ctx = ctx or SourceContext()
        self._credentials = credentials
        self.oauth = credentials is not None
        self.base_url = (base_url or (OAUTH_BASE_URL if self.oauth else PUBLIC_BASE_URL)).rstrip("/")
        self.auth_url = auth_url
        self.interval_s = interval_s
        self.max_pages = max_pages
        self.overlap_s = overlap_s
        self.pause = pause or self.ctx.stop.wait
        self.wall = wall
        self._token: str | None = None
        self._token_expires = 0.0
        self.tokens_fetched = 0
        self._pause_next = 0.0
        self.ratelimit_remaining: float | None = None
        self.polls = 0
        self.posts = 0
        self.rejected = 0
        self.errors = 0
        self.gaps = 0
        self.last_error: str | None = None
        self.last_success: str | None = None
        capacity = max(5000, 2 * len(listings) * max_pages * PAGE_LIMIT)
        self._cursors: dict[str, dict[str, Any]] = {}
        self._seen = SeenIds(capacity=capacity)
        self._dirty = False
        self._load(capacity)

    # -- checkpoint ---------------------------------------------------------------------------

    def _load(self, capacity: int) -> None:
        state = self.store.load(self.name)
        cursors = state.get("listings", {})
        if isinstance(cursors, dict):
            for key, cur in cursors.items():
                if isinstance(cur, dict) and isinstance(cur.get("created_utc"), (int, float)):
                    self._cursors[key] = {"fullname": cur.get("fullname"), "created_utc": float(cur["created_utc"])}
        seen = state.get("seen", [])
        if isinstance(seen, list):
            self._seen = SeenIds((s for s in seen if isinstance(s, str)), capacity=capacity)

    def _save(self) -> None:
        if not self._dirty:
            return
        self.store.save(self.name, {"v": 1, "listings": self._cursors, "seen": self._seen.to_list()})
        self._dirty = False

    def _advance(self, key: str, fullname: str, created: float) -> None:
        cur = self._cursors.get(key)
        if cur is None or created >= cur["created_utc"]:
            self._cursors[key] = {"fullname": fullname, "created_utc": created}
        self._dirty = True

    # -- the source ----------------------------------------------------------------------------

    def items(self) -> Iterator[Item]:
        return poll_forever(self.poll_once, self.ctx.stop, self.interval_s)

    def poll_once(self) -> Iterator[Item]:
        """One pass over every listing; saves the checkpoint as items are handed on."""
        self.polls += 1
        try:
            for listing in self.listings:
                if self.ctx.stop.is_set():
                    return
                try:
                    rejects, posts = self._walk(listing)
                except _Stopped:
                    return
                except (SourceUnavailable, _BadAnswer) as exc:
                    if self.ctx.stop.is_set():  # a wait cut short by shutdown, not a failure
                        return
                    self._fail(f"{listing.key}: {exc}")
                    continue
                except http.client.HTTPException as exc:  # e.g. the connection dropped mid-body
                    self._fail(f"{listing.key}: {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                self.last_success = _iso_now(self.wall())
                for seen_key, reject in rejects:
                    self._seen.add(seen_key)
                    self._dirty = True
                    self.rejected += 1
                    yield reject
                for n, (created, post) in enumerate(posts, 1):
                    if self.ctx.stop.is_set():
                        return
                    self._seen.add(post.id)
                    self._advance(listing.key, post.id.removeprefix(f"{TYPE}:"), created)
                    self.posts += 1
                    yield post
                    if n % PAGE_LIMIT == 0:
                        self._save()
                self._save()
        finally:
            self._save()

    def health(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "items": self.posts,
            "rejected": self.rejected,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_success": self.last_success,
            "cursor": self._cursor_text(),
            "gaps": self.gaps,
            "requests": self.http.requests,
            "rate_limited": self.http.rate_limited,
            "ratelimit_remaining": self.ratelimit_remaining,
        }

    def _cursor_text(self) -> str | None:
        if not self._cursors:
            return None
        return " ".join(f"{key}={cur['fullname'] or '(empty)'}@{_iso_now(cur['created_utc'])}"
                        for key, cur in sorted(self._cursors.items()))

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        log.warning("%s: %s", self.name, message)

    # -- walking a listing ----------------------------------------------------------------------

    def _walk(self, listing: Listing) -> tuple[list[tuple[str, Rejected]], list[tuple[float, Post]]]:
        """Read pages newest first until the cursor (minus the overlap) is reached.

        Returns the new rejects and the new posts, oldest first; hands nothing
        on itself, so a walk that fails half-way leaves no gap behind it.
        """
        cursor = self._cursors.get(listing.key)
        floor = None if cursor is None else cursor["created_utc"] - self.overlap_s
        pages = 1 if cursor is None else self.max_pages
        origin = f"{self.name}:{listing.key}"
        rejects: dict[str, Rejected] = {}
        posts: dict[str, tuple[float, Post]] = {}
        after: str | None = None
        for _ in range(pages):
            if self.ctx.stop.is_set():
                raise _Stopped
            params = [("limit", str(PAGE_LIMIT)), ("raw_json", "1"), *listing.params]
            if after:
                params.append(("after", after))
            children, after = _listing_page(self._get(listing.path, params))
            reached = False
            for child in children:
                parsed = parse_child(child, origin)
                if isinstance(parsed, Rejected):
                    key = _reject_key(child, parsed)
                    if key not in self._seen:
                        rejects.setdefault(key, parsed)
                    continue
                created, post = parsed
                if floor is not None and created < floor:
                    reached = True
                    continue
                if post.id not in self._seen:
                    posts.setdefault(post.id, (created, post))
            if reached or not after or not children:
                break
        else:
            if cursor is not None:
                self.gaps += 1
                log.warning("%s: %s outran %d pages since the last poll: older items are lost",
                            self.name, listing.key, pages)
        if cursor is None and not posts:
            self._cursors[listing.key] = {"fullname": None, "created_utc": float(self.wall())}
            self._dirty = True
        ordered = sorted(posts.values(), key=lambda cp: (cp[0], _base36(cp[1].id)))
        return list(rejects.items()), ordered

    # -- HTTP -------------------------------------------------------------------------------------

    def _get(self, path: str, params: list[tuple[str, str]]) -> Response:
        url = self.base_url + path + ("" if self.oauth else ".json")
        for attempt in (1, 2):
            self._respect_ratelimit()
            headers = {"Authorization": f"bearer {self._access_token()}"} if self.oauth else {}
            try:
                resp = self.http.get(url, params, headers=headers)
            except SourceUnavailable as exc:
                if self.oauth and attempt == 1 and status_of(exc) == 401:
                    log.info("%s: token refused (401), fetching a new one", self.name)
                    self._token = None
                    continue
                raise
            self._note_ratelimit(resp.headers)
            return resp
        raise AssertionError("unreachable")

    def _access_token(self) -> str:
        if self._token is not None and self.wall() < self._token_expires:
            return self._token
        assert self._credentials is not None
        client_id, secret = self._credentials
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
        self._respect_ratelimit()
        asked_at = self.wall()
        try:
            resp = self.http.request("POST", self.auth_url, body=b"grant_type=client_credentials", headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            })
        except SourceUnavailable as exc:
            if status_of(exc) == 401:
                raise SourceUnavailable(f"{self.name}: the token endpoint refused the client credentials "
                                        "(401): check client_id_env / client_secret_env") from None
            raise
        try:
            payload = resp.json()
        except orjson.JSONDecodeError:
            raise SourceUnavailable(f"{self.name}: the token endpoint answered non-JSON") from None
        if not isinstance(payload, dict) or "error" in payload or not isinstance(payload.get("access_token"), str):
            error = payload.get("error") if isinstance(payload, dict) else None
            raise SourceUnavailable(f"{self.name}: no access token from the token endpoint "
                                    f"(error: {str(error)[:80]!r})")
        expires_in = payload.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            expires_in = 3600.0
        self._token = payload["access_token"]
        self._token_expires = asked_at + float(expires_in) - min(60.0, float(expires_in) / 10)
        self.tokens_fetched += 1
        return self._token

    def _note_ratelimit(self, headers: Mapping[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            remaining = float(lower["x-ratelimit-remaining"])
            reset = float(lower["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        if not (math.isfinite(remaining) and math.isfinite(reset)):
            return
        self.ratelimit_remaining = remaining
        reset = max(0.0, reset)
        if remaining < 1:
            self._pause_next = reset + 1.0
        elif remaining < LOW_REMAINING:
            self._pause_next = reset / remaining
        else:
            self._pause_next = 0.0

    def _respect_ratelimit(self) -> None:
        wait, self._pause_next = self._pause_next, 0.0
        if wait > 0:
            log.info("%s: Reddit's rate-limit window is nearly spent, waiting %.1f s", self.name, wait)
            self.pause(wait)
            if self.ctx.stop.is_set():
                raise _Stopped


# -- parsing -------------------------------------------------------------------------------------


def _listing_page(resp: Response) -> tuple[list[Any], str | None]:
    try:
        doc = resp.json()
    except orjson.JSONDecodeError:
        raise _BadAnswer(f"answer is not JSON: {resp.body[:60]!r}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("kind") != "Listing" or not isinstance(data, dict) \
            or not isinstance(data.get("children"), list):
        raise _BadAnswer("answer is not a Reddit Listing")
    after = data.get("after")
    return data["children"], after if isinstance(after, str) and after else None


def parse_child(child: Any, origin: str) -> tuple[float, Post] | Rejected:
    """A listing child (``{"kind": "t3"|"t1", "data": {...}}``) as a post, or why not."""
    raw = orjson.dumps(child)
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return Rejected(raw, "not_an_object", "a listing child must be an object with a 'data' object", origin)
    kind, data = child.get("kind"), child["data"]
    if kind not in ("t3", "t1"):
        return Rejected(raw, "unsupported_kind", f"kind {str(kind)[:20]!r} is neither t3 (link) nor t1 (comment)",
                        origin)
    fullname = data.get("name")
    if not isinstance(fullname, str) or not fullname:
        ident = data.get("id")
        fullname = f"{kind}_{ident}" if isinstance(ident, str) and ident else None
    if fullname is None:
        return Rejected(raw, "missing_field", "name (the fullname) is missing", origin)
    where = f"{origin}:{fullname[:40]}"
    if "created_utc" not in data or data["created_utc"] is None:
        return Rejected(raw, "missing_field", "created_utc is missing", where)
    created = data["created_utc"]
    if isinstance(created, bool) or not isinstance(created, (int, float)):
        return Rejected(raw, "wrong_type", f"created_utc must be epoch seconds, got {type(created).__name__}", where)
    if not math.isfinite(created):
        return Rejected(raw, "bad_timestamp", "created_utc is not finite", where)
    try:
        moment = datetime.fromtimestamp(created, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return Rejected(raw, "bad_timestamp", f"created_utc {created!r} is out of range", where)
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        return Rejected(raw, "bad_timestamp", f"created_utc {created!r} is outside {EARLIEST_YEAR}..{LATEST_YEAR}",
                        where)
    if kind == "t3":
        title, selftext = data.get("title"), data.get("selftext")
        if not isinstance(title, str):
            return Rejected(raw, "missing_field", "title is missing", where)
        body = selftext.strip() if isinstance(selftext, str) else ""
        text = f"{title.strip()}\n\n{body}" if body else title.strip()
        is_repost = bool(data.get("crosspost_parent")) or bool(data.get("crosspost_parent_list"))
    else:
        body = data.get("body")
        if not isinstance(body, str):
            return Rejected(raw, "missing_field", "body is missing", where)
        text = body.strip()
        is_repost = False
    if not text:
        return Rejected(raw, "missing_field", "the post has no text", where)
    author = data.get("author")
    author = f"u/{author}" if isinstance(author, str) and author and author != "[deleted]" else None
    permalink = data.get("permalink")
    url = WEB_URL + permalink if isinstance(permalink, str) and permalink.startswith("/") else None
    score = data.get("score")
    reach = max(0, int(score)) if isinstance(score, (int, float)) and not isinstance(score, bool) \
        and math.isfinite(score) else None
    return float(created), Post(
        source=TYPE,
        id=f"{TYPE}:{fullname}"[:MAX_FIELD_CHARS],
        text=text[:MAX_TEXT_CHARS],
        created_at=moment,
        author=author if author is None or len(author) <= MAX_FIELD_CHARS else author[:MAX_FIELD_CHARS],
        url=url if url is None or len(url) <= MAX_FIELD_CHARS else None,
        reach=reach,
        is_repost=is_repost,
    )


def _reject_key(child: Any, reject: Rejected) -> str:
    data = child.get("data") if isinstance(child, dict) else None
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and name:
        return f"rejected:{name}"
    return "rejected:" + hashlib.sha1(reject.raw).hexdigest()[:20]  # a key, not security


def _base36(post_id: str) -> int:
    try:
        return int(post_id.rsplit("_", 1)[-1], 36)
    except ValueError:
        return 0


def status_of(exc: SourceUnavailable) -> int | None:
    """The HTTP status a :class:`SourceUnavailable` reports, if any."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def _iso_now(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the builder -----------------------------------------------------------------------------------


def build(table: Mapping[str, Any], where: str, ctx: SourceContext, *, http: HttpClient | None = None,
          pause: Callable[[float], object] | None = None, wall: Callable[[], float] = time.time) -> RedditSource:
    """``[[sources]]`` table with ``type = "reddit"`` -> :class:`RedditSource` (see the module docstring)."""
    number = (int, float)
    opts = take(table, where, {
        "queries": list, "subreddits": list, "restrict_sr": bool, "include_comments": bool,
        "interval_s": number, "client_id_env": str, "client_secret_env": str, "base_url": str,
        "auth_url": str, "requests_per_minute": number, "user_agent": str, "max_pages": int,
        "overlap_s": number,
    })
    name = table.get("name", TYPE)
    queries = _strings(opts.get("queries", []), f"{where}.queries", "a search query")
    for q in queries:
        if len(q) > MAX_QUERY_CHARS:
            raise SourceConfigError(f"{where}.queries: {q[:40]!r}... is longer than Reddit's "
                                    f"{MAX_QUERY_CHARS} characters: shorten it")
    subreddits = [_subreddit(s, f"{where}.subreddits")
                  for s in _strings(opts.get("subreddits", []), f"{where}.subreddits", "a subreddit name")]
    if not queries and not subreddits:
        raise SourceConfigError(f"{where}.queries or {where}.subreddits is required: give search queries "
                                "(e.g. queries = [\"acme\"]) and/or subreddits (e.g. subreddits = [\"acme\"])")
    restrict_sr = opts.get("restrict_sr", False)
    if restrict_sr and not (queries and subreddits):
        raise SourceConfigError(f"{where}.restrict_sr = true needs both queries and subreddits "
                                "(it searches the queries inside the subreddits)")
    has_id, has_secret = "client_id_env" in opts, "client_secret_env" in opts
    if has_id != has_secret:
        missing = "client_secret_env" if has_id else "client_id_env"
        raise SourceConfigError(f"{where}.{missing} is required with "
                                f"{'client_id_env' if has_id else 'client_secret_env'}: set both "
                                "(OAuth application-only access) or neither (public endpoints, low budget)")
    credentials = None
    if has_id:
        client_id = ctx.secret(table, "client_id_env", where)
        secret = ctx.secret(table, "client_secret_env", where)
        assert client_id is not None and secret is not None
        credentials = (client_id, secret)
    base_url = _http_url(opts.get("base_url"), f"{where}.base_url")
    auth_url = _http_url(opts.get("auth_url"), f"{where}.auth_url") or AUTH_URL
    interval = _positive(opts.get("interval_s", 60.0), f"{where}.interval_s")
    rpm = _positive(opts.get("requests_per_minute", 60.0 if credentials else 10.0), f"{where}.requests_per_minute")
    max_pages = opts.get("max_pages", MAX_PAGES)
    if not 1 <= max_pages <= MAX_PAGES:
        raise SourceConfigError(f"{where}.max_pages must be between 1 and {MAX_PAGES} "
                                f"(Reddit serves about 1000 items of a listing), got {max_pages}")
    overlap = opts.get("overlap_s", 300.0)
    if overlap < 0 or not math.isfinite(overlap):
        raise SourceConfigError(f"{where}.overlap_s must be a number of seconds >= 0, got {overlap!r}")
    user_agent = opts.get("user_agent", USER_AGENT).strip()
    if not user_agent:
        raise SourceConfigError(f"{where}.user_agent must not be empty: Reddit requires a descriptive one, "
                                "e.g. 'python:com.example.crisiswatch:v1.0 (by /u/yourname)'")
    listings = listings_for(queries, subreddits, restrict_sr, opts.get("include_comments", True))
    client = http or HttpClient(name, requests_per_minute=rpm, headers={"User-Agent": user_agent}, stop=ctx.stop)
    return RedditSource(listings, client, ctx.store(), ctx=ctx, name=name, credentials=credentials,
                        base_url=base_url, auth_url=auth_url, interval_s=interval, max_pages=max_pages,
                        overlap_s=float(overlap), pause=pause, wall=wall)


def _strings(values: list[Any], where: str, what: str) -> list[str]:
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise SourceConfigError(f"{where} must be a list of non-empty strings ({what} each), got {value!r}")
        if value.strip() not in out:
            out.append(value.strip())
    return out


def _subreddit(value: str, where: str) -> str:
    name = value.removeprefix("/").removeprefix("r/").strip("/")
    if not _SUBREDDIT.match(name):
        raise SourceConfigError(f"{where}: {value!r} is not a subreddit name (letters, digits and _, "
                                "2 to 21 characters, e.g. 'acme' or 'r/acme'; join several with '+')")
    return name


def _http_url(value: str | None, where: str) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value):
        raise SourceConfigError(f"{where} must be an http(s) URL, got {value!r}")
    return value


def _positive(value: float, where: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise SourceConfigError(f"{where} must be a number > 0, got {value!r}")
    return float(value)
