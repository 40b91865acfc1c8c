"""One USSD hop: the provider's request, our answer, and the `Hop` that screens and actions work on.

The engine (`menus.engine`) makes a `Hop` for each request; the screens (`menus.tree`) and the actions
(`menus.actions`) act on it. It lives in a module of its own so that the tree and the actions, which the engine
imports, can use it without importing the engine back: the engine hands each hop a `Menu` (settings, stores, texts
and screens) rather than itself.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from config.settings import Settings
from menus import keypad
from menus.keypad import BACK, MAIN_MENU, MORE, SKIP
from menus.paging import gsm_safe, screen_pages
from menus.session import Draft, Frame, SessionState
from models.db import Database
from models.people import Language
from notifications.sms.encoding import gsm7_length
from notifications.sms.number_limits import NumberLimits
from notifications.sms.texts import Catalogue

log = logging.getLogger(__name__)

CONTINUE_PREFIX = "CON "
END_PREFIX = "END "


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


class Screen(ABC):
    """A screen of the menu tree (`menus.tree.SCREENS`): what it shows, and what a typed answer does."""

    root = False  # the first screen of a session: no "0 Back 00 Main menu" line, there is nowhere to go

    @abstractmethod
    def content(self, hop: Hop, frame: Frame) -> list[str]:
        """The lines of the screen in the hop's language, before paging."""

    @abstractmethod
    def answer(self, hop: Hop, frame: Frame, text: str) -> None:
        """Act on a typed answer (stripped, never a keypad code): move on, or `hop.reask` with a reason."""

    def back(self, hop: Hop, frame: Frame) -> None:
        """`0`: the previous screen."""
        hop.pop()

    def skip(self, hop: Hop, frame: Frame) -> None:
        """`99` on a screen that has nothing to skip is an invalid choice like any other."""
        hop.reask("error.invalid_choice")


@dataclass(frozen=True)
class Menu:
    """What every hop of a process shares: settings, the database, Redis, the texts, and the screens by name."""

    settings: Settings
    database: Database
    redis: redis.Redis
    catalogue: Catalogue
    screens: Mapping[str, Screen]
    # The texts an END screen may show: an END screen cannot be paged, so the tests check each against the width.
    end_texts: frozenset[str]
    # Per-number limits, asked only on the few screens that owe an SMS or a call or take a national ID.
    limits: NumberLimits

    def text(self, key: str, language: str, **params: Any) -> str:
        """A catalogue text with its placeholders filled, the keypad codes included."""
        return self.catalogue.get(key, language, **keypad.PLACEHOLDERS, **params)


class Hop:
    """One request being answered: the session state, the draft, and the navigation a screen asks for."""

    def __init__(self, menu: Menu, request: UssdRequest, state: SessionState, draft: Draft):
        self.menu = menu
        self.request = request
        self.state = state
        self.draft = draft
        self.end_key: str | None = None
        self.end_params: dict[str, Any] = {}
        self.known_language: str | None = None  # the Redis copy of the caller's language, read with the session
        self.remember_language = False  # refresh that copy when the hop is saved
        self.checkins_open_until = 0.0  # Unix seconds until which a check-in may be open, read with the session

    @property
    def settings(self) -> Settings:
        return self.menu.settings

    @property
    def database(self) -> Database:
        return self.menu.database

    @property
    def redis(self) -> redis.Redis:
        """For enqueueing SMS sends after a commit (the session state is saved by the engine, not through this)."""
        return self.menu.redis

    @property
    def limits(self) -> NumberLimits:
        return self.menu.limits

    @property
    def phone(self) -> str:
        return self.request.phone

    @property
    def language(self) -> str:
        return self.state.language or Language.ENGLISH

    def t(self, key: str, **params: Any) -> str:
        """The text for `key` in the caller's language."""
        return self.menu.text(key, self.language, **params)

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
        """Close the session with the text `key`, one of the menu's END texts (an END screen cannot be paged)."""
        if key not in self.menu.end_texts:
            raise ValueError(f"{key} is not an END text")
        self.end_key, self.end_params = key, params

    def main_menu(self) -> None:
        self.reset("main" if self.state.language else "language_first")

    # Answering.
    @property
    def screen(self) -> Screen:
        return self.menu.screens[self.frame.screen]

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
