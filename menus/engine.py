"""The USSD engine: one call per hop, from the provider's request to the screen it answers with.

A hop reads the session and the registration draft from Redis in one round trip, works out the new answer, lets
the current screen act on it (touching the database only when the screen needs it), renders the next screen and
writes the state back in one round trip. Nothing slow (SMS sending) happens here: SMS are only owed, as rows.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from config.logging import log_context
from config.metrics import USSD_SESSIONS_STARTED
from config.settings import Settings
from menus import actions
from menus.hop import END_PREFIX, Hop, Menu, UssdRequest, UssdResponse
from menus.session import Draft, Frame, SessionState, SessionStore
from menus.texts import menu_catalogue
from menus.tree import END_TEXTS, SCREENS
from models.db import Database
from models.people import Language
from models.phone import mask_phone
from notifications.sms.number_limits import NumberLimits

log = logging.getLogger(__name__)

# Africa's Talking joins the answers of a session with this in `text`.
ANSWER_SEPARATOR = "*"


def unavailable_response() -> UssdResponse:
    """What the webhook answers when Redis or the database is down: we cannot know the language, so both."""
    return UssdResponse(body=END_PREFIX + menu_catalogue().get("unavailable", Language.ENGLISH), end=True)


def unserved_number_response() -> UssdResponse:
    """What the webhook answers a number the programme does not serve (not a Lesotho or South African mobile)."""
    return UssdResponse(body=END_PREFIX + menu_catalogue().get("unserved", Language.ENGLISH), end=True)


def new_answer(last_text: str, text: str) -> str:
    """The answer this hop adds, given the `text` of the previous hop of the session.

    Africa's Talking sends every answer so far joined by `*` (`1*2*Thabo`); some gateways send only the latest
    answer; a user can type `*` inside an answer. So the cumulative text is never split: when `text` extends the
    previous hop's text by `*`, the answer is the remainder (which may itself hold `*`); otherwise the gateway sent
    only the latest answer, and `text` is the answer.

    A `text` equal to the previous one is a re-send and is answered before this is called (see `UssdEngine.handle`).
    The one ambiguity no server can resolve: on a gateway that sends only the latest answer, typing the same answer
    twice in a row (`3` for COVID-19, then `3` for Testing) looks exactly like a re-send of the first. We choose the
    re-send reading: the same screen is shown again and nothing happens twice (no second registration, no second
    SMS). Africa's Talking itself sends cumulative text, where an identical text can only be a re-send.
    """
    prefix = last_text + ANSWER_SEPARATOR
    if last_text and text.startswith(prefix):
        return text[len(prefix) :]
    return text


class UssdEngine:
    """Answers USSD hops. Built once per process; `handle` is safe to call from many threads at once."""

    def __init__(self, settings: Settings, database: Database, redis: redis.Redis):
        self.settings = settings
        self.database = database
        self.redis = redis  # for enqueueing SMS sends after a commit; session state goes through `store`
        self.store = SessionStore(redis, settings.ussd_session_ttl_seconds, settings.registration_draft_ttl_seconds)
        self.catalogue = menu_catalogue()
        self.menu = Menu(
            settings=settings,
            database=database,
            redis=redis,
            catalogue=self.catalogue,
            screens=SCREENS,
            end_texts=END_TEXTS,
            limits=NumberLimits(redis, settings),
        )

    def text(self, key: str, language: str, **params: Any) -> str:
        """A catalogue text with its placeholders filled, the keypad codes included."""
        return self.menu.text(key, language, **params)

    def handle(self, request: UssdRequest) -> UssdResponse:
        """The screen for this hop. Raises only `redis.RedisError` or SQLAlchemy errors, never for user input."""
        with log_context(session=request.session_id):
            loaded = self.store.load(request.session_id, request.phone)
            state, draft = loaded.state, loaded.draft
            if state is not None and any(frame.screen not in SCREENS for frame in state.stack):
                log.warning("session state names a screen this version does not have; starting afresh")
                state = None
            if state is not None and (request.text == state.last_text or state.ended):
                # A gateway that did not get our answer in time sends the hop again: same screen, no side effects.
                log.info("re-sent hop from %s answered from the session", mask_phone(request.phone))
                return UssdResponse.from_body(state.last_body)
            hop = Hop(self.menu, request, state or SessionState(), draft)
            hop.known_language = loaded.language
            hop.checkins_open_until = loaded.checkins_open_until
            if state is None or not state.stack:
                USSD_SESSIONS_STARTED.inc()
                actions.start_session(hop)
            else:
                hop.answer(new_answer(state.last_text, request.text))
            body = hop.body()
            hop.state.last_text, hop.state.last_body = request.text, body
            hop.state.ended = hop.end_key is not None
            self.store.save(
                request.session_id, request.phone, hop.state, hop.draft, remember_language=hop.remember_language
            )
            # DEBUG: at hundreds of hops a second a line per hop would drown the lines operators need (changes,
            # refusals, errors, all at INFO and above, all with the session id), and costs a tenth of a hop's time.
            if log.isEnabledFor(logging.DEBUG):
                log.debug("hop from %s: %s", mask_phone(request.phone), hop.end_key or hop.frame.screen)
            return UssdResponse.from_body(body)

    def preview(self, frame: Frame, language: str | None, answers: dict[str, Any] | None = None) -> list[str]:
        """Every page of `frame` as a caller in `language` would see it (without `CON `): for tests and staff."""
        state = SessionState(language=language, stack=[frame])
        hop = Hop(self.menu, UssdRequest(session_id="preview", phone=""), state, Draft(answers=dict(answers or {})))
        return list(hop.pages())
