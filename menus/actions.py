"""What the menu does beyond showing screens: the only places a hop reads or writes the database.

Each action runs in one short transaction (`with database.session()`), then moves the hop to the next screen.
Screens that only navigate never come here, so a plain menu hop costs no database round trip at all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from menus.registration import CONSENT, QUESTIONS, first_unanswered, is_complete, to_registration_answers
from models.grants import format_maloti
from models.messages import MessageKind, MessagePriority
from models.people import find_beneficiary_by_phone, find_contact, get_or_create_contact
from models.phone import mask_phone
from models.registration import AlreadyRegisteredError, NationalIdTakenError, RegistrationError, register_beneficiary
from models.requests import CallbackRequest, Feedback
from notifications.outbox import owe_message
from notifications.queues import kick

if TYPE_CHECKING:
    from menus.engine import Hop

log = logging.getLogger(__name__)

# A first name longer than this is cut on the END screen, which cannot be paged.
DISPLAY_NAME_MAX_CHARS = 20
# The longest problem report kept; a USSD answer is far shorter, this only guards the column.
FEEDBACK_MAX_CHARS = 500
FEEDBACK_MIN_CHARS = 2


def start_session(hop: Hop) -> None:
    """First hop of a session: the caller's language (cached in the session from now on) picks the first screen."""
    with hop.database.session() as session:
        contact = find_contact(session, hop.phone)
        hop.state.language = contact.language if contact is not None else None
        if hop.state.language is None:
            hop.reset("language_first")
            return
        hop.reset("main")
        _offer_unfinished_registration(hop, session)


def set_language(hop: Hop, language: str) -> None:
    """Store the choice on the contact (creating it on a first dial); the next screen is in the new language."""
    first_choice = hop.state.language is None
    with hop.database.session() as session:
        contact = get_or_create_contact(session, hop.phone)
        contact.language = language
        hop.state.language = language
        hop.reset("main")
        if first_choice:
            _offer_unfinished_registration(hop, session)
    log.info("language set to %s for %s", language, mask_phone(hop.phone))


def _offer_unfinished_registration(hop: Hop, session) -> None:
    """A draft left by a dropped session is offered again, unless the number has registered since."""
    if not hop.draft.answers:
        return
    if find_beneficiary_by_phone(session, hop.phone) is not None:
        hop.draft.clear()
        return
    hop.push("resume")


def start_registration(hop: Hop) -> None:
    """`1 Register`: a registered number sees its details; an unfinished draft is offered; else the first question."""
    with hop.database.session() as session:
        beneficiary = find_beneficiary_by_phone(session, hop.phone)
        if beneficiary is not None:
            if hop.draft.answers:
                hop.draft.clear()
            grant = beneficiary.grant
            hop.push(
                "details",
                reference=beneficiary.reference,
                full_name=beneficiary.full_name,
                district=beneficiary.district,
                status=grant.status if grant is not None else None,
            )
            return
    if hop.draft.answers:
        hop.push("resume")
    else:
        hop.push("question", field=QUESTIONS[0].field)


def continue_registration(hop: Hop) -> None:
    """Replace the current screen with the first question not answered yet (or consent, or the confirm screen)."""
    field = first_unanswered(hop.draft.answers)
    if field is None:
        hop.replace("confirm")
    elif field == CONSENT:
        hop.replace("consent")
    else:
        hop.replace("question", field=field)


def restart_registration(hop: Hop) -> None:
    hop.draft.clear()
    hop.replace("question", field=QUESTIONS[0].field)


def decline_consent(hop: Hop) -> None:
    """Declining stores nothing about the person: the draft goes, and no row was ever written."""
    hop.draft.clear()
    hop.end("registration.declined")


def submit_registration(hop: Hop) -> None:
    """Write the beneficiary, its grant and the confirmation SMS it is owed, in one transaction."""
    answers = hop.draft.answers
    if not is_complete(answers):
        if first_unanswered(answers) is None:  # complete but unreadable: ask again from the start
            restart_registration(hop)
        else:
            continue_registration(hop)
        return
    try:
        with hop.database.session() as session:
            beneficiary = register_beneficiary(
                session, hop.phone, to_registration_answers(answers), hop.language, actor="ussd"
            )
            owe_message(
                session,
                beneficiary.contact,
                MessageKind.REGISTRATION_CONFIRMATION,
                first_name=beneficiary.first_name,
                reference=beneficiary.reference,
            )
            reference, first_name = beneficiary.reference, beneficiary.first_name
    except AlreadyRegisteredError:
        # Another session of the same number won the race; show the reference it got.
        hop.draft.clear()
        hop.end("registration.already", reference=_reference_of(hop))
        return
    except NationalIdTakenError:
        hop.draft.forget("national_id")
        hop.replace("question", field="national_id")
        hop.reask("error.national_id_taken")
        return
    except RegistrationError:
        log.exception("registration failed for %s", mask_phone(hop.phone))
        hop.end("registration.failed")
        return
    hop.draft.clear()
    kick(hop.engine.redis, MessagePriority.TRANSACTIONAL)
    log.info("registered %s as reference %s", mask_phone(hop.phone), reference)
    hop.end("registration.done", first_name=first_name[:DISPLAY_NAME_MAX_CHARS], reference=reference)


def _reference_of(hop: Hop) -> str:
    with hop.database.session() as session:
        beneficiary = find_beneficiary_by_phone(session, hop.phone)
        return beneficiary.reference if beneficiary is not None else "-"


def show_status(hop: Hop) -> None:
    with hop.database.session() as session:
        beneficiary = find_beneficiary_by_phone(session, hop.phone)
        if beneficiary is None:
            hop.push("not_registered")
            return
        grant = beneficiary.grant
        hop.push(
            "status",
            reference=beneficiary.reference,
            status=grant.status if grant is not None else None,
            amount=format_maloti(grant.amount) if grant is not None and grant.amount is not None else None,
            channel=grant.payment_channel if grant is not None else None,
        )


def show_alerts(hop: Hop) -> None:
    with hop.database.session() as session:
        contact = find_contact(session, hop.phone)
        hop.push("alerts", on=contact.alerts_on if contact is not None else True)


def set_alerts(hop: Hop, on: bool) -> None:
    """Set (not toggle) the choice, so that a repeated answer cannot flip it back."""
    with hop.database.session() as session:
        get_or_create_contact(session, hop.phone).alerts_on = on
    log.info("alerts %s for %s", "on" if on else "off", mask_phone(hop.phone))
    hop.replace("notice", text="alerts.now_on" if on else "alerts.now_off")


def send_covid_tips(hop: Hop) -> None:
    """Owe one COVID-19 tips SMS; asking again in the same session only says it is on its way."""
    if hop.state.tips_sent:
        hop.push("notice", text="covid.tips_already")
        return
    with hop.database.session() as session:
        owe_message(session, get_or_create_contact(session, hop.phone), MessageKind.COVID_TIPS)
    kick(hop.engine.redis, MessagePriority.TRANSACTIONAL)
    hop.state.tips_sent = True
    hop.push("notice", text="covid.tips_sent")


def request_callback(hop: Hop, topic: str) -> None:
    with hop.database.session() as session:
        contact = get_or_create_contact(session, hop.phone)
        session.add(CallbackRequest(contact_id=contact.id, topic=topic))
    log.info("call-back requested about %s by %s", topic, mask_phone(hop.phone))
    hop.end("contact.callback_thanks")


def clean_feedback(text: str) -> str:
    """The report as staff will read it: printable characters only (PostgreSQL refuses NUL), spaces collapsed."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())[:FEEDBACK_MAX_CHARS]


def report_problem(hop: Hop, text: str) -> None:
    report = clean_feedback(text)
    if len(report) < FEEDBACK_MIN_CHARS:
        hop.reask("error.feedback")
        return
    with hop.database.session() as session:
        contact = get_or_create_contact(session, hop.phone)
        session.add(Feedback(contact_id=contact.id, text=report))
    log.info("problem reported by %s", mask_phone(hop.phone))
    hop.end("contact.problem_thanks")
