"""The menu tree of the USSD menu contract (README.md, "The USSD menu"): every screen, what it shows and where
each answer leads.

A screen is a small object with `content` (its lines, before paging) and `answer` (what a typed answer does). The
keypad codes (0, 00, 98, 99) never reach a screen's `answer`: the engine handles them the same way everywhere.
Option numbers are given by the position in each list: they are printed on posters, so append, never reorder.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from menus import actions, checkin
from menus.hop import Hop, Screen
from menus.registration import (
    CONSENT,
    HOUSEHOLD,
    NATIONAL_ID,
    QUESTIONS,
    QUESTIONS_BY_FIELD,
    InvalidAnswer,
    Question,
    answer_question,
    for_household,
    parse_choice,
)
from menus.session import Frame
from models.grants import PaymentChannel
from models.people import Language

# The COVID-19 topics, in menu order; each has a title `covid.<topic>` and a long text `covid.<topic>_text`.
COVID_TOPICS = ("prevention", "symptoms", "testing", "vaccination", "help")
# Call-back topics, in menu order; the value is stored in CallbackRequest.topic.
CALLBACK_TOPICS = ("grant", "registration", "other")
# Texts an END screen may show. They cannot be paged, so the tests check each against the screen width.
END_TEXTS = frozenset(
    {
        "registration.done",
        "registration.declined",
        "registration.already",
        "registration.failed",
        "registration.held",
        "registration.household_full",
        "contact.callback_thanks",
        "contact.callback_open",
        "contact.problem_thanks",
        "contact.erasure_requested",
        "contact.erasure_already_open",
        "contact.erasure_not_registered",
    }
    | checkin.END_TEXTS
)


@dataclass(frozen=True)
class Option:
    """A numbered menu line: its label (a catalogue key, or literal text) and what choosing it does."""

    label: str
    action: Callable[[Hop], None]
    literal: bool = False


class MenuScreen(Screen):
    """A title and numbered options."""

    title = ""

    @abstractmethod
    def options(self, hop: Hop, frame: Frame) -> list[Option]:
        """The options, in their poster order."""

    def title_lines(self, hop: Hop, frame: Frame) -> list[str]:
        return [hop.t(self.title)]

    def content(self, hop: Hop, frame: Frame) -> list[str]:
        options = self.options(hop, frame)
        lines = [
            f"{number} {option.label if option.literal else hop.t(option.label)}"
            for number, option in enumerate(options, start=1)
        ]
        return [*self.title_lines(hop, frame), *lines]

    def answer(self, hop: Hop, frame: Frame, text: str) -> None:
        options = self.options(hop, frame)
        number = parse_choice(text, len(options))
        if number is None:
            hop.reask("error.invalid_choice")
            return
        options[number - 1].action(hop)


class InformationScreen(Screen):
    """A text to read, paged with 98; only the keypad codes lead anywhere."""

    def answer(self, hop: Hop, frame: Frame, text: str) -> None:
        hop.reask("error.invalid_choice")


def _push(name: str, **args: Any) -> Callable[[Hop], None]:
    return lambda hop: hop.push(name, **args)


class LanguageFirstScreen(MenuScreen):
    root = True
    title = "language.first"

    def options(self, hop, frame):
        return [
            Option("language.en", partial(actions.set_language, language=Language.ENGLISH)),
            Option("language.st", partial(actions.set_language, language=Language.SESOTHO)),
        ]


class LanguageScreen(LanguageFirstScreen):
    root = False
    title = "language.title"


class MainScreen(MenuScreen):
    root = True
    title = "main.title"

    def options(self, hop, frame):
        options = [
            Option("main.register", actions.start_registration),
            Option("main.status", actions.show_status),
            Option("main.covid", _push("covid")),
            Option("main.alerts", actions.show_alerts),
            Option("main.language", _push("language")),
            Option("main.contact", _push("contact")),
        ]
        if hop.state.checkin:  # only while a check-in is open for this caller (menus/checkin.py)
            options.append(Option("main.checkin", checkin.start_checkin))
        return options


class ResumeScreen(MenuScreen):
    title = "registration.resume"

    def options(self, hop, frame):
        return [
            Option("registration.continue", actions.continue_registration),
            Option("registration.start_again", actions.restart_registration),
        ]


# Questions asked otherwise when the registration is for another member of the household (their name, their consent).
HOUSEHOLD_PROMPTS = {QUESTIONS[0].prompt: "registration.full_name_household"}


def _for_household(hop: Hop, frame: Frame) -> bool:
    """A household member's registration: marked in the draft, or (before the first answer) on the first question."""
    return for_household(hop.draft.answers) or frame.args.get(HOUSEHOLD) is True


class QuestionScreen(Screen):
    """One registration question; `frame.args["field"]` says which."""

    def question(self, frame: Frame) -> Question:
        return QUESTIONS_BY_FIELD.get(frame.args.get("field"), QUESTIONS[0])

    def content(self, hop, frame):
        question = self.question(frame)
        options = [
            f"{number} {choice.label if choice.literal else hop.t(choice.label)}"
            for number, choice in enumerate(question.choices, start=1)
        ]
        prompt = question.prompt
        if _for_household(hop, frame):
            prompt = HOUSEHOLD_PROMPTS.get(prompt, prompt)
        return [hop.t(prompt), *options]

    def answer(self, hop, frame, text):
        question = self.question(frame)
        try:
            value = answer_question(question, text, hop.draft.answers)
        except InvalidAnswer as invalid:
            hop.reask(invalid.reason, **invalid.params)
            return
        if question.field == NATIONAL_ID and not actions.allow_national_id_attempt(hop):
            hop.reask("error.national_id_limit")
            return
        self._store(hop, frame, question, value)

    def skip(self, hop, frame):
        question = self.question(frame)
        if not question.optional:
            hop.reask("error.invalid_choice")
            return
        self._store(hop, frame, question, None)

    def back(self, hop, frame):
        index = QUESTIONS.index(self.question(frame))
        if index == 0:
            hop.pop()
        else:
            hop.replace("question", field=QUESTIONS[index - 1].field)

    @staticmethod
    def _store(hop: Hop, frame: Frame, question: Question, value: Any) -> None:
        if frame.args.get(HOUSEHOLD) is True and not for_household(hop.draft.answers):
            hop.draft.set(HOUSEHOLD, True)
        hop.draft.set(question.field, value)
        # A changed answer can make a later one wrong (a year of return before the new year of birth): ask it again.
        for dependent in question.invalidates:
            if dependent in hop.draft.answers:
                try:
                    answer_question(QUESTIONS_BY_FIELD[dependent], str(hop.draft.answers[dependent]), hop.draft.answers)
                except InvalidAnswer:
                    hop.draft.forget(dependent)
        actions.continue_registration(hop)


class ConsentScreen(MenuScreen):
    title = "registration.consent"

    def title_lines(self, hop, frame):
        return [hop.t("registration.consent_household" if _for_household(hop, frame) else self.title)]

    def options(self, hop, frame):
        return [Option("registration.agree", self._agree), Option("registration.disagree", actions.decline_consent)]

    @staticmethod
    def _agree(hop: Hop) -> None:
        hop.draft.set(CONSENT, True)
        actions.continue_registration(hop)

    def back(self, hop, frame):
        hop.replace("question", field=QUESTIONS[-1].field)


class ConfirmScreen(MenuScreen):
    """The answers summarised for a last check; long answers page with 98 before the options."""

    title = "registration.confirm"

    def title_lines(self, hop, frame):
        answers = hop.draft.answers
        labels = {question.field: _answer_label(hop, question, answers.get(question.field)) for question in QUESTIONS}
        return [hop.t(self.title), hop.t("registration.summary", **labels)]

    def options(self, hop, frame):
        return [
            Option("registration.confirm_yes", actions.submit_registration),
            Option("registration.start_again", actions.restart_registration),
        ]

    def back(self, hop, frame):
        hop.replace("consent")


def _answer_label(hop: Hop, question: Question, value: Any) -> str:
    if value is None or value == "":
        return "-"
    for choice in question.choices:
        if choice.value == value:
            return choice.label if choice.literal else hop.t(choice.label)
    return str(value)


def _grant_status_label(hop: Hop, status: str | None) -> str:
    return hop.t(f"grant_status.{status}") if status else "-"


class DetailsScreen(InformationScreen):
    """What `1 Register` shows a number that is already registered."""

    def content(self, hop, frame):
        args = frame.args
        return [
            hop.t(
                "details.text",
                reference=args.get("reference", "-"),
                full_name=args.get("full_name", "-"),
                district=args.get("district", "-"),
                status=_grant_status_label(hop, args.get("status")),
            )
        ]


class RegisterWhomScreen(MenuScreen):
    """`1 Register` on a phone that has a registration: for the caller (their details) or a household member."""

    title = "registration.whom"

    def options(self, hop, frame):
        people = list(frame.args.get("people") or [])
        return [
            Option("registration.whom_self", partial(actions.show_own_details, people=people)),
            Option("registration.whom_household", partial(actions.start_household_registration, people=people)),
        ]


class WhoseScreen(MenuScreen):
    """A household phone's people by first name, for grant status ("whose?") or one's own details; typing a
    reference of someone on the phone works too (two people may share a first name)."""

    def title_lines(self, hop, frame):
        return [hop.t("whose.details" if frame.args.get("purpose") == "details" else "whose.status")]

    def options(self, hop, frame):
        people = list(frame.args.get("people") or [])
        target = "details" if frame.args.get("purpose") == "details" else "status"
        first_names = [str(person.get("first_name", "-")) for person in people]
        return [
            Option(
                _person_label(person, first_names),
                partial(actions.show_person, screen=target, person=person),
                literal=True,
            )
            for person in people
        ]

    def answer(self, hop, frame, text):
        if parse_choice(text, len(self.options(hop, frame))) is None:
            if not actions.looks_like_reference(text):
                hop.reask("error.invalid_choice")
                return
            person = actions.person_by_reference(list(frame.args.get("people") or []), text)
            if person is None:
                hop.reask("error.reference_unknown")
                return
            target = "details" if frame.args.get("purpose") == "details" else "status"
            actions.show_person(hop, target, person)
            return
        super().answer(hop, frame, text)


def _person_label(person: dict, first_names: list[str]) -> str:
    """The first name; when two on the phone share it, the full name (as much as a screen line holds)."""
    first_name = str(person.get("first_name", "-"))
    if first_names.count(first_name) > 1:
        return str(person.get("full_name", first_name))[: actions.DISPLAY_NAME_MAX_CHARS]
    return first_name


class HouseholdFullScreen(InformationScreen):
    """A household member's registration refused: the phone holds MAX_BENEFICIARIES_PER_PHONE people already."""

    def content(self, hop, frame):
        return [hop.t("registration.household_full", limit=frame.args.get("limit", "-"))]


class StatusScreen(InformationScreen):
    def content(self, hop, frame):
        args = frame.args
        lines = [hop.t("status.title", status=_grant_status_label(hop, args.get("status")))]
        if args.get("amount"):
            lines.append(hop.t("status.amount", amount=args["amount"]))
        channel = args.get("channel")
        if channel:
            label = hop.t(f"payment_channel.{channel}") if channel in set(PaymentChannel) else str(channel)
            lines.append(hop.t("status.channel", channel=label))
        lines.append(hop.t("status.reference", reference=args.get("reference", "-")))
        return lines


class NotRegisteredScreen(MenuScreen):
    title = "status.not_registered"

    def options(self, hop, frame):
        return [Option("status.register_now", actions.start_registration)]


class CovidScreen(MenuScreen):
    title = "covid.title"

    def options(self, hop, frame):
        topics = [Option(f"covid.{topic}", _push("covid_topic", topic=topic)) for topic in COVID_TOPICS]
        return [*topics, Option("covid.tips", actions.send_covid_tips)]


class CovidTopicScreen(InformationScreen):
    def content(self, hop, frame):
        topic = frame.args.get("topic")
        topic = topic if topic in COVID_TOPICS else COVID_TOPICS[0]
        return [hop.t(f"covid.{topic}"), hop.t(f"covid.{topic}_text")]


class NoticeScreen(InformationScreen):
    """A one-line confirmation (`frame.args["text"]` is its catalogue key) with the way back."""

    def content(self, hop, frame):
        return [hop.t(frame.args.get("text", "covid.tips_sent"))]


class AlertsScreen(MenuScreen):
    def title_lines(self, hop, frame):
        return [hop.t("alerts.on" if frame.args.get("on", True) else "alerts.off")]

    def options(self, hop, frame):
        on = bool(frame.args.get("on", True))
        return [Option("alerts.turn_off" if on else "alerts.turn_on", partial(actions.set_alerts, on=not on))]


class ContactScreen(MenuScreen):
    title = "contact.title"

    def options(self, hop, frame):
        return [
            Option("contact.callback", _push("callback_topic")),
            Option("contact.problem", _push("feedback")),
            Option("contact.erasure", _push("erasure")),
        ]


class CallbackTopicScreen(MenuScreen):
    title = "contact.callback_topic"

    def options(self, hop, frame):
        return [
            Option(f"contact.topic_{topic}", partial(actions.request_callback, topic=topic))
            for topic in CALLBACK_TOPICS
        ]


class FeedbackScreen(Screen):
    def content(self, hop, frame):
        return [hop.t("contact.problem_prompt")]

    def answer(self, hop, frame, text):
        actions.report_problem(hop, text)


class ErasureScreen(MenuScreen):
    """What asking for erasure means, before the request is recorded (0 goes back without asking)."""

    title = "contact.erasure_confirm"

    def options(self, hop, frame):
        return [Option("contact.erasure_yes", actions.request_erasure)]


SCREENS: dict[str, Screen] = {
    "language_first": LanguageFirstScreen(),
    "main": MainScreen(),
    "language": LanguageScreen(),
    "resume": ResumeScreen(),
    "question": QuestionScreen(),
    "consent": ConsentScreen(),
    "confirm": ConfirmScreen(),
    "details": DetailsScreen(),
    "register_whom": RegisterWhomScreen(),
    "whose": WhoseScreen(),
    "household_full": HouseholdFullScreen(),
    "status": StatusScreen(),
    "not_registered": NotRegisteredScreen(),
    "covid": CovidScreen(),
    "covid_topic": CovidTopicScreen(),
    "notice": NoticeScreen(),
    "alerts": AlertsScreen(),
    "contact": ContactScreen(),
    "callback_topic": CallbackTopicScreen(),
    "feedback": FeedbackScreen(),
    "erasure": ErasureScreen(),
    **checkin.SCREENS,
}
