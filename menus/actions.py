"""What the menu does beyond showing screens: the only places a hop reads or writes the database.

Each action runs in one short transaction (`with database.connection()`: Core statements, no ORM unit of work),
then moves the hop to the next screen. Screens that only navigate never come here, so a plain menu hop costs no
database round trip at all; nor does a returning caller's dial, whose language comes with the session from Redis.
"""

from __future__ import annotations

import logging

from config.metrics import CHANNEL_USSD, REGISTRATIONS
from menus.checkin import find_open_checkin
from menus.hop import Hop
from menus.registration import (
    CONSENT,
    QUESTIONS,
    first_unanswered,
    for_household,
    is_complete,
    to_registration_answers,
)
from models.actors import Actor
from models.grants import GrantSummary, format_maloti, grant_summaries
from models.held import hold_registration
from models.messages import MessageKind, MessagePriority
from models.people import (
    ConsentChannel,
    contact_alerts_on,
    contact_id,
    contact_language,
    first_name_of,
    household_members,
    save_contact_choice,
)
from models.phone import mask_phone
from models.reference import REFERENCE_BODY_DIGITS, is_valid_reference
from models.registration import (
    AlreadyRegisteredError,
    HouseholdFullError,
    NationalIdTakenError,
    RegistrationError,
)
from models.requests import ErasureChannel, add_callback_request, add_feedback, ask_for_erasure, count_open_callbacks
from notifications.casework.registration import register_beneficiary_for
from notifications.sms.number_limits import CALLBACK, COVID_TIPS, NATIONAL_ID_ATTEMPT
from notifications.sms.outbox import Recipient, record_owed_message
from notifications.sms.queues import kick

log = logging.getLogger(__name__)

# A first name longer than this is cut on the END screen, which cannot be paged.
DISPLAY_NAME_MAX_CHARS = 20
# The longest problem report kept; a USSD answer is far shorter, this only guards the column.
FEEDBACK_MAX_CHARS = 500
FEEDBACK_MIN_CHARS = 2
# Digits of a registration reference (its body and the check digit), as a caller types it on "whose?".
REFERENCE_LENGTH = REFERENCE_BODY_DIGITS + 1


def start_session(hop: Hop) -> None:
    """First hop of a session: the caller's language (kept in the session from now on) picks the first screen.

    The language comes from its Redis copy, read with the session; only a number without one asks the database.
    While a check-in may be open (a mark read with the session), a known caller costs one indexed read: whether one
    is open for them (`7` on the main menu).
    """
    language = hop.known_language
    if language is None:
        with hop.database.connection() as db:
            language = contact_language(db, hop.phone)
    hop.state.language = language
    if language is None:
        hop.reset("language_first")
        return
    hop.remember_language = True
    hop.reset("main")
    find_open_checkin(hop)
    _offer_unfinished_registration(hop)


def set_language(hop: Hop, language: str) -> None:
    """Store the choice on the contact (creating it on a first dial); the next screen is in the new language."""
    first_choice = hop.state.language is None
    with hop.database.connection() as db:
        save_contact_choice(db, hop.phone, language=language)
    hop.state.language = language
    hop.remember_language = True
    hop.reset("main")
    if first_choice:
        _offer_unfinished_registration(hop)
    log.info("language set to %s for %s", language, mask_phone(hop.phone))


def _offer_unfinished_registration(hop: Hop) -> None:
    """A draft left by a dropped session is offered again, unless it cannot be finished any more: the number has
    registered since (a draft for oneself), or the phone has since filled up (a draft for a household member)."""
    if not hop.draft.answers:
        return
    with hop.database.connection() as db:
        registered = len(household_members(db, hop.phone))
    if registered and (not for_household(hop.draft.answers) or registered >= _household_limit(hop)):
        hop.draft.clear()
        return
    hop.push("resume")


def _household_limit(hop: Hop) -> int:
    return hop.settings.max_beneficiaries_per_phone


def _person(summary: GrantSummary) -> dict:
    """One person of a phone as the screens need them, kept in the session so that choosing costs no query."""
    return {
        "reference": summary.reference,
        "first_name": first_name_of(summary.full_name)[:DISPLAY_NAME_MAX_CHARS],
        "full_name": summary.full_name,
        "district": summary.district,
        "status": summary.status,
        "amount": format_maloti(summary.amount) if summary.amount is not None else None,
        "channel": summary.payment_channel,
    }


def start_registration(hop: Hop) -> None:
    """`1 Register`: a registered number is asked whether the registration is for the caller (their details) or for
    someone else in the household; an unfinished draft is offered; else the first question."""
    with hop.database.connection() as db:
        people = [_person(summary) for summary in grant_summaries(db, hop.phone)]
    if people:
        if hop.draft.answers and not for_household(hop.draft.answers):
            hop.draft.clear()  # a draft for oneself, and oneself is registered now
        hop.push("register_whom", people=people)
        return
    if hop.draft.answers:
        hop.push("resume")
    else:
        hop.push("question", field=QUESTIONS[0].field)


def show_own_details(hop: Hop, people: list[dict]) -> None:
    """ "For yourself": the caller's details; on a household phone, after they choose their name."""
    if len(people) == 1:
        show_person(hop, "details", people[0])
    else:
        hop.push("whose", people=people, purpose="details")


def start_household_registration(hop: Hop, people: list[dict]) -> None:
    """ "For someone in your household": a registration of another person, unless the phone is full (the limit is
    checked again when the registration is written)."""
    if len(people) >= _household_limit(hop):
        hop.push("household_full", limit=_household_limit(hop))
        return
    if for_household(hop.draft.answers):
        hop.push("resume")
        return
    hop.draft.clear()
    hop.push("question", field=QUESTIONS[0].field, household=True)


def show_person(hop: Hop, screen: str, person: dict) -> None:
    """The details (`details`) or the grant status (`status`) of one person on the phone."""
    if screen == "details":
        hop.push(
            "details",
            reference=person.get("reference"),
            full_name=person.get("full_name"),
            district=person.get("district"),
            status=person.get("status"),
        )
    else:
        hop.push(
            "status",
            reference=person.get("reference"),
            status=person.get("status"),
            amount=person.get("amount"),
            channel=person.get("channel"),
        )


def looks_like_reference(text: str) -> bool:
    """Whether `text` is typed as a reference is (its number of digits, spaces allowed), right or mistyped."""
    digits = "".join(text.split())
    return digits.isascii() and digits.isdigit() and len(digits) == REFERENCE_LENGTH


def person_by_reference(people: list[dict], text: str) -> dict | None:
    """The person on this phone whose reference `text` is; None for anything else, a stranger's reference included:
    a phone sees only the people registered with it."""
    reference = "".join(text.split())
    if not is_valid_reference(reference):
        return None
    return next((person for person in people if person.get("reference") == reference), None)


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
    """Clear the answers; a registration for a household member stays one."""
    household = for_household(hop.draft.answers)
    hop.draft.clear()
    if household:
        hop.replace("question", field=QUESTIONS[0].field, household=True)
    else:
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
        with hop.database.connection() as db:
            registered = register_beneficiary_for(
                db,
                Actor.returnee(),
                to_registration_answers(answers),
                phone=hop.phone,
                language=hop.language,
                consent=ConsentChannel.USSD,
                max_per_phone=_household_limit(hop),
            )
    except AlreadyRegisteredError as already:
        # This person is on the phone already (registered twice, or another session won the race): their reference.
        hop.draft.clear()
        first_name = first_name_of(str(answers.get("full_name", "")))[:DISPLAY_NAME_MAX_CHARS]
        hop.end("registration.already", first_name=first_name, reference=already.reference)
        return
    except HouseholdFullError as full:
        hop.draft.clear()
        hop.end("registration.household_full", limit=full.limit)
        return
    except NationalIdTakenError:
        _hold_registration(hop)
        return
    except RegistrationError:
        log.exception("registration failed for %s", mask_phone(hop.phone))
        hop.end("registration.failed")
        return
    hop.draft.clear()
    REGISTRATIONS.labels(channel=CHANNEL_USSD).inc()
    kick(hop.redis, MessagePriority.TRANSACTIONAL)
    log.info("registered %s as reference %s", mask_phone(hop.phone), registered.reference)
    hop.end(
        "registration.done",
        first_name=registered.first_name[:DISPLAY_NAME_MAX_CHARS],
        reference=registered.reference,
    )


def _hold_registration(hop: Hop) -> None:
    """The ID belongs to someone else: keep the registration for staff and say only that they will be in touch.
    "Already registered" would tell anyone who types a stranger's ID that the stranger is in the programme."""
    with hop.database.connection() as db:
        held_id = hold_registration(db, hop.phone, to_registration_answers(hop.draft.answers), hop.language)
    hop.draft.clear()
    log.info("registration of %s held for staff as %s: national ID taken", mask_phone(hop.phone), held_id)
    hop.end("registration.held")


def allow_national_id_attempt(hop: Hop) -> bool:
    """Count one national ID typed by this number; False past NATIONAL_ID_ATTEMPTS_PER_DAY, so that one phone
    cannot try ID after ID. The only Redis call beyond the hop's two, and only on the ID question."""
    if hop.limits.allow(NATIONAL_ID_ATTEMPT, hop.phone):
        return True
    log.info("national ID refused for %s: daily attempts used up", mask_phone(hop.phone))
    return False


def show_status(hop: Hop) -> None:
    """`2 Grant status`: the one person's status, or on a household phone "whose?" first."""
    with hop.database.connection() as db:
        people = [_person(summary) for summary in grant_summaries(db, hop.phone)]
    if not people:
        hop.push("not_registered")
    elif len(people) == 1:
        show_person(hop, "status", people[0])
    else:
        hop.push("whose", people=people, purpose="status")


def show_alerts(hop: Hop) -> None:
    with hop.database.connection() as db:
        hop.push("alerts", on=contact_alerts_on(db, hop.phone))


def set_alerts(hop: Hop, on: bool) -> None:
    """Set (not toggle) the choice, so that a repeated answer cannot flip it back."""
    with hop.database.connection() as db:
        save_contact_choice(db, hop.phone, alerts_on=on)
    log.info("alerts %s for %s", "on" if on else "off", mask_phone(hop.phone))
    hop.replace("notice", text="alerts.now_on" if on else "alerts.now_off")


def send_covid_tips(hop: Hop) -> None:
    """Owe one COVID-19 tips SMS; asking again in the same session only says it is on its way, and past the
    number's daily limit (COVID_TIPS_SMS_PER_DAY) nothing is owed: the programme pays for every SMS."""
    if hop.state.tips_sent:
        hop.push("notice", text="covid.tips_already")
        return
    if not hop.limits.allow(COVID_TIPS, hop.phone):
        log.info("COVID-19 tips refused for %s: daily limit reached", mask_phone(hop.phone))
        hop.push("notice", text="covid.tips_limit")
        return
    with hop.database.connection() as db:
        recipient = Recipient(hop.phone, contact_id(db, hop.phone), hop.language)
        record_owed_message(db, recipient, MessageKind.COVID_TIPS)
    kick(hop.redis, MessagePriority.TRANSACTIONAL)
    hop.state.tips_sent = True
    hop.push("notice", text="covid.tips_sent")


def request_callback(hop: Hop, topic: str) -> None:
    """A call-back request, unless the number has OPEN_CALLBACKS_PER_NUMBER waiting for staff already (or another
    request of it is being recorded this instant): staff time is the programme's, and one call answers them all."""
    with hop.limits.guard(CALLBACK, hop.phone) as held:
        added = held and _add_callback_within_limit(hop, topic)
    if not added:
        log.info("call-back request refused for %s: one is already open", mask_phone(hop.phone))
        hop.end("contact.callback_open")
        return
    log.info("call-back requested about %s by %s", topic, mask_phone(hop.phone))
    hop.end("contact.callback_thanks")


def _add_callback_within_limit(hop: Hop, topic: str) -> bool:
    with hop.database.connection() as db:
        contact = contact_id(db, hop.phone)
        if count_open_callbacks(db, contact) >= hop.settings.open_callbacks_per_number:
            return False
        add_callback_request(db, contact, topic)
    return True


def clean_feedback(text: str) -> str:
    """The report as staff will read it: printable characters only (PostgreSQL refuses NUL), spaces collapsed."""
    return " ".join("".join(char if char.isprintable() else " " for char in text).split())[:FEEDBACK_MAX_CHARS]


def report_problem(hop: Hop, text: str) -> None:
    report = clean_feedback(text)
    if len(report) < FEEDBACK_MIN_CHARS:
        hop.reask("error.feedback")
        return
    with hop.database.connection() as db:
        add_feedback(db, contact_id(db, hop.phone), report)
    log.info("problem reported by %s", mask_phone(hop.phone))
    hop.end("contact.problem_thanks")


def request_erasure(hop: Hop) -> None:
    """Record the person's request that their data be deleted; staff confirm it with them before anything goes."""
    with hop.database.connection() as db:
        asked = ask_for_erasure(db, hop.phone, ErasureChannel.USSD)
    log.info("erasure asked by %s: %s", mask_phone(hop.phone), asked)
    hop.end(f"contact.erasure_{asked}")
