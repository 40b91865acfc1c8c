"""A phone shared by a household, beyond the menu: alerts belong to the phone, notices name the person they are about
(in that person's language), and the phone's own rows (campaign SMS, inbox items, report figures) count once."""

from __future__ import annotations

import itertools
from decimal import Decimal

from sqlalchemy import select

from menus.corrections import IdentityCheck, move_to_new_number
from models.actors import Actor
from models.campaigns import Audience
from models.corrections import ERASED
from models.grants import find_grant_by_reference
from models.messages import MessageKind, MessagePriority, OutboundMessage
from models.people import find_beneficiaries_by_phone, find_beneficiary_by_reference, find_contact
from models.reports import Filters, sms_breakdown
from models.requests import ErasureChannel, ErasureRequest, ask_for_erasure
from notifications.campaigns.fanout import run_fanout
from notifications.campaigns.lifecycle import create_campaign, send_campaign
from notifications.casework.grants import change_grant_status
from notifications.casework.inbox import list_inbox
from notifications.casework.privacy import erase_person, export_person
from notifications.sms.dispatch import Dispatcher
from notifications.sms.inbound import receive_sms
from notifications.sms.outbox import owe_text
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from tests.factories import next_phone, register

OPERATOR = Actor.operator("tester")
_provider_ids = itertools.count(1)


def household(db, *people: tuple[str, str]) -> tuple[str, list[str]]:
    """A phone with the given (full name, language) people registered on it, in Leribe; (phone, references)."""
    phone = next_phone()
    references = [
        register(db, phone, language=language, full_name=name, district="Leribe")[0] for name, language in people
    ]
    return phone, references


def text(db, limits, phone: str, body: str) -> OutboundMessage | None:
    with db.session() as session:
        _, reply = receive_sms(session, limits=limits, provider_id=f"hh-{next(_provider_ids)}", phone=phone, text=body)
        return reply


def campaign_to_leribe(db, redis) -> list[OutboundMessage]:
    with db.session() as session:
        campaign = create_campaign(
            session,
            name="Training",
            text_en="Dear {first_name}, training in {district} on Monday.",
            text_st="{first_name}, thupelo {district} ka Mantaha.",
            audience=Audience(districts=["Leribe"]),
            created_by="officer@example.org",
        )
        send_campaign(session, campaign)
        campaign_id = campaign.id
    run_fanout(db, redis, campaign_id)
    with db.session() as session:
        return list(
            session.execute(select(OutboundMessage).where(OutboundMessage.campaign_id == campaign_id)).scalars()
        )


def move(db, reference: str, *steps: tuple[str, dict]) -> list[OutboundMessage]:
    notices = []
    with db.session() as session:
        grant = find_grant_by_reference(session, reference)
        for step, extra in steps:
            _, notice = change_grant_status(session, grant, step, actor="officer", **extra)
            if notice is not None:
                notices.append(notice)
        session.flush()
        return [(n.phone, n.language, n.body) for n in notices]


APPROVE = (("under_review", {}), ("approved", {"amount": Decimal("1500")}))
PAY = (("payment_scheduled", {"channel": "mpesa"}), ("paid", {}))


def test_stop_turns_alerts_off_for_everyone_on_the_phone_and_says_so(db, redis, limits):
    phone, _ = household(db, ("Palesa Mohapi", "en"), ("Thabo Mohapi", "en"))
    reply = text(db, limits, phone, "STOP")
    assert reply.body.startswith("Returnee programme: SMS alerts are off for this phone, for everyone registered")
    assert campaign_to_leribe(db, redis) == []
    reply = text(db, limits, phone, "QALA")  # START in Sesotho, answered in the phone's language (English)
    assert reply.body.startswith("Returnee programme: SMS alerts are on again for this phone, for everyone")
    assert [message.phone for message in campaign_to_leribe(db, redis)] == [phone]


def test_emisa_from_a_sesotho_household_phone_says_it_is_for_the_phone(db, limits):
    phone, _ = household(db, ("Lineo Mohapi", "st"), ("Neo Mohapi", "st"))
    reply = text(db, limits, phone, "emisa")
    assert reply.body.startswith("Litemoso tsa SMS li koetsoe nomorong ena, ho bohle ba ngolisitsoeng ka eona.")
    with db.session() as session:
        assert find_contact(session, phone).alerts_on is False


def test_a_campaign_sends_one_sms_to_a_household_phone_naming_its_first_person(db, redis):
    phone, _ = household(db, ("Palesa Mohapi", "en"), ("Thabo Mohapi", "en"), ("Lineo Mohapi", "st"))
    alone = register(db, district="Leribe", full_name="Neo Lebona")[1]
    sent = campaign_to_leribe(db, redis)
    assert sorted((m.phone, m.body) for m in sent) == sorted(
        [(phone, "Dear Palesa, training in Leribe on Monday."), (alone, "Dear Neo, training in Leribe on Monday.")]
    )


def test_notices_name_the_person_in_their_own_language_and_reach_the_shared_phone(db, redis, settings, emulator):
    phone, (palesa, lineo) = household(db, ("Palesa Mohapi", "en"), ("Lineo Mohapi", "st"))
    lineo_notices = move(db, lineo, *APPROVE, *PAY)
    palesa_notices = move(db, palesa, *APPROVE)
    assert [(number, language) for number, language, _ in lineo_notices] == [(phone, "st")] * 3
    for _, _, body in lineo_notices:
        assert body.startswith("Lineo") or " Lineo" in body, body
        assert lineo in body and "Dear" not in body
    assert palesa_notices == [
        (
            phone,
            "en",
            f"Dear Palesa, your reintegration grant ({palesa}) is approved: M1,500.00. We will send an SMS when the"
            " payment is scheduled.",
        )
    ]
    settings = settings.replace(at_api_base_url=emulator.url, at_api_key="k", quiet_hours=None)
    dispatcher = Dispatcher(
        settings=settings, db=db, redis=redis, provider=AfricasTalkingProvider.from_settings(settings)
    )
    while dispatcher.drain(MessagePriority.TRANSACTIONAL)[0]:
        pass
    received = [(m["phone"], m["text"]) for m in emulator.state.snapshot()["messages"]]
    expected = [(phone, body) for _, _, body in lineo_notices + palesa_notices]
    # Confirmations of the registrations go too; the notices each arrive once, to the one phone.
    assert sorted(pair for pair in received if pair in expected) == sorted(expected)
    assert len([pair for pair in received if pair in expected]) == 4


def test_an_sms_of_a_household_phone_is_one_inbox_item_and_counts_once(db, limits):
    phone, _ = household(db, ("Palesa Mohapi", "en"), ("Thabo Mohapi", "en"), ("Lineo Mohapi", "en"))
    text(db, limits, phone, "When is the training?")
    with db.session() as session:
        owe_text(session, find_contact(session, phone), MessageKind.STAFF, "Training is on Monday.")
    with db.session() as session:
        items = [item for item in list_inbox(session, kinds=["sms"]) if item.phone == phone]
        assert [(item.text, item.full_name) for item in items] == [("When is the training?", "Palesa Mohapi")]
        leribe_only = [item for item in list_inbox(session, kinds=["sms"], districts=["Leribe"]) if item.phone == phone]
        assert len(leribe_only) == 1
        assert not [item for item in list_inbox(session, kinds=["sms"], districts=["Maseru"]) if item.phone == phone]
        figures = sms_breakdown(session, Filters())
    # The phone's one SMS counts once, under its first person (Leribe, female): not once per person on the phone.
    assert sum(figure.total for figure in figures.values()) == 1
    assert [key for key, figure in figures.items() if figure.total] == [next(iter(figures))]


def test_erasure_asked_from_a_household_phone_is_a_request_per_person(db):
    phone, references = household(db, ("Palesa Mohapi", "en"), ("Thabo Mohapi", "en"))
    with db.session() as session:
        assert ask_for_erasure(session, phone, ErasureChannel.SMS) == "requested"
        assert ask_for_erasure(session, phone, ErasureChannel.USSD) == "already_open"
        asked = session.execute(select(ErasureRequest.beneficiary_id).order_by(ErasureRequest.id)).scalars().all()
        assert asked == [find_beneficiary_by_reference(session, ref).id for ref in references]


def test_erasing_one_person_of_a_household_phone_leaves_the_others_and_the_phone(db, redis):
    phone, (palesa, lineo) = household(db, ("Palesa Mohapi", "en"), ("Lineo Mohapi", "st"))
    move(db, lineo, *APPROVE)
    move(db, palesa, *APPROVE)
    with db.session() as session:
        export = export_person(session, OPERATOR, palesa)
    assert export["profile"]["others_on_phone"] == 1
    assert all(lineo not in message["body"] for message in export["sms"])  # the other person's SMS are theirs
    assert any(palesa in message["body"] for message in export["sms"])
    with db.session() as session:
        erase_person(session, redis, OPERATOR, lineo, "asked in person")
    with db.session() as session:
        assert [person.reference for person in find_beneficiaries_by_phone(session, phone)] == [palesa]
        bodies = session.execute(select(OutboundMessage.phone, OutboundMessage.body)).all()
        assert all("Lineo" not in body for _, body in bodies)
        assert any(number == phone and palesa in body for number, body in bodies)
        assert find_beneficiary_by_reference(session, lineo).full_name == ERASED
        assert find_contact(session, phone).alerts_on is True  # the phone is the household's still


def test_a_household_member_moves_to_a_number_of_their_own_alone(db, redis):
    phone, (palesa, thabo) = household(db, ("Palesa Mohapi", "en"), ("Thabo Mohapi", "en"))
    new_phone = next_phone()
    with db.session() as session:
        move_to_new_number(session, redis, OPERATOR, thabo, new_phone, IdentityCheck.IN_PERSON)
    with db.session() as session:
        assert [p.reference for p in find_beneficiaries_by_phone(session, phone)] == [palesa]
        assert [p.reference for p in find_beneficiaries_by_phone(session, new_phone)] == [thabo]
        told = session.execute(
            select(OutboundMessage.phone, OutboundMessage.body).where(OutboundMessage.kind == MessageKind.NUMBER_MOVED)
        ).all()
    assert {number for number, _ in told} == {phone, new_phone}
    assert any(number == new_phone and body.startswith("Dear Thabo") for number, body in told)
