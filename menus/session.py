"""USSD state in Redis: the session (per provider session id) and the registration draft (per phone number).

Speed contract: a hop reads both keys with ONE `MGET` and writes whatever changed with ONE pipeline. Nothing else
of the menu touches Redis, so a hop costs two round trips whatever the screen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import redis

log = logging.getLogger(__name__)

SESSION_KEY_PREFIX = "ussd:session:"
DRAFT_KEY_PREFIX = "ussd:draft:"
# One encoder for every hop: `json.dumps(..., separators=...)` would build a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def session_key(session_id: str) -> str:
    return f"{SESSION_KEY_PREFIX}{session_id}"


def draft_key(phone: str) -> str:
    return f"{DRAFT_KEY_PREFIX}{phone}"


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


class SessionStore:
    """Reads and writes the two keys of a hop, in one round trip each."""

    def __init__(self, client: redis.Redis, session_ttl_seconds: int, draft_ttl_seconds: int):
        self.client = client
        self.session_ttl_seconds = session_ttl_seconds
        self.draft_ttl_seconds = draft_ttl_seconds

    def load(self, session_id: str, phone: str) -> tuple[SessionState | None, Draft]:
        """The session state (None for a new session) and the phone's draft (empty when there is none)."""
        raw_state, raw_draft = self.client.mget([session_key(session_id), draft_key(phone)])
        return _read_state(raw_state), _read_draft(raw_draft)

    def save(self, session_id: str, phone: str, state: SessionState, draft: Draft) -> None:
        """Write the session, and the draft only when it changed. Every write renews its key's TTL."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(session_key(session_id), state.to_json(), ex=self.session_ttl_seconds)
        if draft.deleted:
            pipe.delete(draft_key(phone))
        elif draft.changed:
            pipe.set(draft_key(phone), draft.to_json(), ex=self.draft_ttl_seconds)
        pipe.execute()


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
