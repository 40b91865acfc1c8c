"""USSD state in Redis: the session (per provider session id), the registration draft and the language (per number).

Speed contract: a hop reads the three keys, and the global "a check-in may be open until" mark
(`models.ussd.CHECKINS_OPEN_UNTIL_KEY`), with ONE `MGET` and writes whatever changed in ONE round trip. Nothing
else of the menu touches Redis, so a hop costs two round trips whatever the screen.

The language key is a copy of `Contact.language`, kept so that a returning caller's dial needs no database read.
The menu is the only writer of that column (the language screen and a registration, which stores the language the
caller chose), and it refreshes the copy in the same hop; if the copy is missing or expired the dial reads the
database, as it would without the copy. Anything that one day changes a contact's language elsewhere must delete
`models.ussd.language_key(phone)`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import redis

from config.redis import round_trip
from models.people import Language
from models.ussd import CHECKINS_OPEN_UNTIL_KEY, draft_key, language_key, session_key

log = logging.getLogger(__name__)

# How long a caller's language copy lives after their last dial; a caller back after longer costs one read.
LANGUAGE_TTL_SECONDS = 90 * 24 * 3600
# One encoder for every hop: `json.dumps(..., separators=...)` would build a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_LANGUAGES = frozenset(language.value for language in Language)


@dataclass
class Frame:
    """One screen on the navigation stack: which screen, its arguments, the page shown and a pending reason."""

    screen: str
    args: dict[str, Any] = field(default_factory=dict)
    page: int = 0
    error: str | None = None  # catalogue key of the reason the question is asked again
    error_params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, by hand: `dataclasses.asdict` deep-copies every value, and this runs on every hop.

        The keys are the field names, so `Frame(**data)` reads it back (the test suite checks none is missing).
        """
        return {
            "screen": self.screen,
            "args": self.args,
            "page": self.page,
            "error": self.error,
            "error_params": self.error_params,
        }


@dataclass
class SessionState:
    """What the server remembers between the hops of one USSD session.

    `last_text` and `last_body` let a hop recognise a gateway re-send and answer it with the exact same screen.
    `language` caches the contact's language so that only the first hop of a session asks the database.
    """

    language: str | None = None
    stack: list[Frame] = field(default_factory=list)
    last_text: str = ""
    last_body: str = ""
    ended: bool = False
    tips_sent: bool = False  # the COVID-19 tips SMS is owed at most once per session
    checkin: int | None = None  # the caller's open check-in invitation, looked up when the session starts (menu 7)

    def to_json(self) -> str:
        """The Redis value; the same JSON `dataclasses.asdict` gave, so sessions survive a deploy of this change."""
        return _COMPACT_JSON.encode(
            {
                "language": self.language,
                "stack": [frame.to_dict() for frame in self.stack],
                "last_text": self.last_text,
                "last_body": self.last_body,
                "ended": self.ended,
                "tips_sent": self.tips_sent,
                "checkin": self.checkin,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> SessionState:
        data = json.loads(raw)
        data["stack"] = [Frame(**frame) for frame in data.get("stack", [])]
        return cls(**data)


@dataclass
class Draft:
    """An unfinished registration: the answers so far, by field name (None for a skipped optional question)."""

    answers: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    deleted: bool = False

    def set(self, name: str, value: Any) -> None:
        self.answers[name] = value
        self.changed, self.deleted = True, False

    def forget(self, name: str) -> None:
        if name in self.answers:
            del self.answers[name]
            self.changed = True

    def clear(self) -> None:
        self.answers = {}
        self.changed, self.deleted = False, True

    def to_json(self) -> str:
        return _COMPACT_JSON.encode({"answers": self.answers})

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Draft:
        if raw is None:
            return cls()
        return cls(answers=dict(json.loads(raw)["answers"]))


@dataclass
class Loaded:
    """What a hop finds in Redis: the session (None for a new one), the number's draft, and its language copy."""

    state: SessionState | None
    draft: Draft
    language: str | None
    checkins_open_until: float = 0.0  # Unix seconds; 0: no check-in open anywhere (menus.checkin)


class SessionStore:
    """Reads and writes the keys of a hop, in one round trip each (`config.redis.round_trip`)."""

    def __init__(self, client: redis.Redis, session_ttl_seconds: int, draft_ttl_seconds: int):
        self.client = client
        self.session_ttl_seconds = session_ttl_seconds
        self.draft_ttl_seconds = draft_ttl_seconds

    def load(self, session_id: str, phone: str) -> Loaded:
        ((raw_state, raw_draft, raw_language, raw_open_until),) = round_trip(
            self.client,
            ("MGET", session_key(session_id), draft_key(phone), language_key(phone), CHECKINS_OPEN_UNTIL_KEY),
        )
        return Loaded(
            _read_state(raw_state), _read_draft(raw_draft), _read_language(raw_language), _read_seconds(raw_open_until)
        )

    def save(
        self, session_id: str, phone: str, state: SessionState, draft: Draft, *, remember_language: bool = False
    ) -> None:
        """Write the session, the draft only when it changed, and the language copy when asked (each with its TTL)."""
        commands: list[tuple] = [("SET", session_key(session_id), state.to_json(), "EX", self.session_ttl_seconds)]
        if draft.deleted:
            commands.append(("DEL", draft_key(phone)))
        elif draft.changed:
            commands.append(("SET", draft_key(phone), draft.to_json(), "EX", self.draft_ttl_seconds))
        if remember_language and state.language:
            commands.append(("SET", language_key(phone), state.language, "EX", LANGUAGE_TTL_SECONDS))
        round_trip(self.client, *commands)


def _read_state(raw: bytes | None) -> SessionState | None:
    """A state we cannot read (a deploy changed the format) starts a fresh session rather than failing every hop."""
    if raw is None:
        return None
    try:
        return SessionState.from_json(raw)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("unreadable USSD session state, starting afresh: %s", exc)
        return None


def _read_draft(raw: bytes | None) -> Draft:
    try:
        return Draft.from_json(raw)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("unreadable registration draft, starting afresh: %s", exc)
        return Draft()


def _read_seconds(raw: bytes | None) -> float:
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        return 0.0


def _read_language(raw: bytes | None) -> str | None:
    """A copy we do not recognise is ignored: the dial then reads the database."""
    language = raw.decode(errors="replace") if raw else None
    return language if language in _LANGUAGES else None
