"""The USSD engine: one call per hop, from the provider's request to the screen it answers with.

A hop reads the session and the registration draft from Redis in one round trip, works out the new answer, lets
the current screen act on it (touching the database only when the screen needs it), renders the next screen and
writes the state back in one round trip. Nothing slow (SMS sending) happens here: SMS are only owed, as rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis

from config.logging import log_context
from config.settings import Settings
from menus import actions, keypad
from menus.keypad import BACK, MAIN_MENU, MORE, SKIP
from menus.paging import gsm_safe, screen_pages
from menus.session import Draft, Frame, SessionState, SessionStore
from menus.texts import menu_catalogue
from menus.tree import END_TEXTS, SCREENS, Screen
from models.db import Database
from models.people import Language
from models.phone import mask_phone
from notifications.sms.encoding import gsm7_length
from notifications.sms.number_limits import NumberLimits

log = logging.getLogger(__name__)

CONTINUE_PREFIX = "CON "
END_PREFIX = "END "
# Africa's Talking joins the answers of a session with this in `text`.
ANSWER_SEPARATOR = "*"


@dataclass(frozen=True)
class UssdRequest:
    """One hop as the provider sends it; `phone` is already E.164."""

    session_id: str
    phone: str
    service_code: str = ""
    network_code: str = ""
    text: str = ""


@dataclass(frozen=True)
class UssdResponse:
    """The `text/plain` answer: `CON <screen>` keeps the session open, `END <screen>` closes it."""

    body: str
    end: bool

    @classmethod
    def from_body(cls, body: str) -> UssdResponse:
        return cls(body=body, end=body.startswith(END_PREFIX))


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


class Hop:
    """One request being answered: the session state, the draft, and the navigation a screen asks for."""

    def __init__(self, engine: UssdEngine, request: UssdRequest, state: SessionState, draft: Draft):
        self.engine = engine
        self.request = request
        self.state = state
        self.draft = draft
        self.end_key: str | None = None
        self.end_params: dict[str, Any] = {}
        self.known_language: str | None = None  # the Redis copy of the caller's language, read with the session
        self.remember_language = False  # refresh that copy when the hop is saved

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def database(self) -> Database:
        return self.engine.database

    @property
    def phone(self) -> str:
        return self.request.phone

    @property
    def language(self) -> str:
        return self.state.language or Language.ENGLISH

    def t(self, key: str, **params: Any) -> str:
        """The text for `key` in the caller's language."""
        return self.engine.text(key, self.language, **params)

    # Navigation, for screens and actions.
    @property
    def frame(self) -> Frame:
        return self.state.stack[-1]

    def push(self, screen: str, **args: Any) -> None:
        self.state.stack.append(Frame(screen, dict(args)))

    def replace(self, screen: str, **args: Any) -> None:
        self.state.stack[-1] = Frame(screen, dict(args))

    def reset(self, screen: str, **args: Any) -> None:
        self.state.stack = [Frame(screen, dict(args))]

    def pop(self) -> None:
        """Back to the previous screen, as it was first shown; on the first screen, show it again."""
        if len(self.state.stack) > 1:
            self.state.stack.pop()
        self.state.stack[-1] = Frame(self.frame.screen, self.frame.args)

    def reask(self, reason: str, **params: Any) -> None:
        """Ask the current screen again, from its first page, with a short reason above it."""
        self.frame.error, self.frame.error_params, self.frame.page = reason, dict(params), 0

    def end(self, key: str, **params: Any) -> None:
        """Close the session with the text `key`, one of `END_TEXTS` (an END screen cannot be paged)."""
        if key not in END_TEXTS:
            raise ValueError(f"{key} is not an END text")
        self.end_key, self.end_params = key, params

    def main_menu(self) -> None:
        self.reset("main" if self.state.language else "language_first")

    # Answering.
    @property
    def screen(self) -> Screen:
        return SCREENS[self.frame.screen]

    def answer(self, raw: str) -> None:
        """Apply the keypad codes the same way on every screen; anything else is the screen's to judge."""
        text = raw.strip()
        frame = self.frame
        if text == MORE:
            # The reason, if any, stays on while paging, so that the pages stay the same.
            if frame.page + 1 < len(self.pages()):
                frame.page += 1
            else:
                self.reask("error.no_more")
            return
        if text == MAIN_MENU:
            self.main_menu()
            return
        frame.error, frame.error_params, frame.page = None, {}, 0
        if text == BACK:
            self.screen.back(self, frame)
        elif text == SKIP:
            self.screen.skip(self, frame)
        else:
            self.screen.answer(self, frame, text)

    # Rendering.
    def pages(self) -> tuple[str, ...]:
        """The current screen split into pages that fit the network's width, reason first.

        Only the lines are built here (a few catalogue look-ups); the paging itself is nearly always a cache hit.
        """
        frame, screen = self.frame, self.screen
        lines = screen.content(self, frame)
        if frame.error:
            lines = [self.t(frame.error, **frame.error_params), *lines]
        navigation = "" if screen.root else self.t("nav.back")
        more = "\n".join(part for part in (self.t("nav.more"), navigation) if part)
        limit = self.settings.ussd_max_chars - len(CONTINUE_PREFIX)
        return screen_pages(tuple(lines), limit, more, navigation)

    def body(self) -> str:
        if self.end_key is not None:
            return END_PREFIX + self._fit(gsm_safe(self.t(self.end_key, **self.end_params)), len(END_PREFIX))
        pages = self.pages()
        return CONTINUE_PREFIX + pages[min(self.frame.page, len(pages) - 1)]

    def _fit(self, text: str, prefix_length: int) -> str:
        """Last guard for an END text, which cannot page: cut rather than have the network drop the screen."""
        limit = self.settings.ussd_max_chars - prefix_length
        if gsm7_length(text) <= limit:
            return text
        log.warning("END text %s is longer than %s characters; cut", self.end_key, limit)
        while gsm7_length(text) > limit:
            text = text[:-1]
        return text


class UssdEngine:
    """Answers USSD hops. Built once per process; `handle` is safe to call from many threads at once."""

    def __init__(self, settings: Settings, database: Database, redis: redis.Redis):
        self.settings = settings
        self.database = database
        self.redis = redis  # for enqueueing SMS sends after a commit; session state goes through `store`
        self.store = SessionStore(redis, settings.ussd_session_ttl_seconds, settings.registration_draft_ttl_seconds)
        self.catalogue = menu_catalogue()

    @cached_property
    def limits(self) -> NumberLimits:
        """Per-number limits, for the few screens that owe an SMS or a call (never on a plain menu hop)."""
        return NumberLimits(self.redis, self.settings)

    def text(self, key: str, language: str, **params: Any) -> str:
        """A catalogue text with its placeholders filled, the keypad codes included."""
        return self.catalogue.get(key, language, **keypad.PLACEHOLDERS, **params)

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
            hop = Hop(self, request, state or SessionState(), draft)
            hop.known_language = loaded.language
            if state is None or not state.stack:
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
        hop = Hop(self, UssdRequest(session_id="preview", phone=""), state, Draft(answers=dict(answers or {})))
        return list(hop.pages())
