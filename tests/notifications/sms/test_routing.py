"""SMS_ROUTES and KANNEL_<R>_*: parsing, the route of a number, and Kannel's callbacks at the gateway."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from config import load_settings
from config.settings import SettingsError
from models.messages import DeliveryReport, InboundMessage, MessageKind, MessageStatus, OutboundMessage
from models.people import get_or_create_contact
from notifications.sms.outbox import owe_text
from notifications.sms.providers.kannel import provider_message_id
from notifications.sms.routing import Router

TOKEN = "routing-webhook-token-0123456789abcdef"


def kannel_env(*routes: str) -> dict[str, str]:
    environ = {}
    for route in routes:
        environ |= {f"KANNEL_{route}_URL": f"http://kannel-{route.lower()}:13013/", f"KANNEL_{route}_USERNAME": "gw"}
    return environ


def test_sms_routes_default_to_africastalking_and_name_each_kannel_route_once():
    assert load_settings({}, app_env="test").sms_routes == (("*", "africastalking"),)
    settings = load_settings(
        {
            "SMS_ROUTES": "vodacom=VODACOM; +2666=ECONET ;econet=ECONET",
            **kannel_env("VODACOM", "ECONET"),
            "KANNEL_ECONET_RATE_PER_SECOND": "2.5",
            "KANNEL_ECONET_SMSC": "econet-smpp",
        },
        app_env="test",
        sms_rate_per_second=7.0,
    )
    assert settings.sms_routes == (
        ("vodacom", "VODACOM"),
        ("+2666", "ECONET"),
        ("econet", "ECONET"),
        ("*", "africastalking"),
    )
    vodacom, econet = settings.kannel_routes
    assert (vodacom.name, vodacom.url, vodacom.rate_per_second, vodacom.smsc) == (
        "VODACOM",
        "http://kannel-vodacom:13013",
        10.0,
        "",
    )
    assert (econet.name, econet.rate_per_second, econet.smsc) == ("ECONET", 2.5, "econet-smpp")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("vodacom", "KEY=ROUTE"),
        ("+26a=VODACOM", r"\+ and digits"),
        ("vodacom=VODA COM", "route name"),
        ("*=KANNEL", "KANNEL_KANNEL_URL"),
    ],
)
def test_a_wrong_sms_routes_or_a_kannel_route_without_its_settings_refuses_to_start(raw, problem):
    with pytest.raises(SettingsError, match=problem):
        load_settings({"SMS_ROUTES": raw}, app_env="test")


def test_a_prefix_beats_a_network_and_a_network_beats_the_default():
    router = Router(
        (("vodacom", "VODACOM"), ("econet", "ECONET"), ("+27", "africastalking"), ("+2665", "PREFIX"), ("*", "DEFAULT"))
    )
    assert router.route_for("+26658000001") == "PREFIX"  # Vodacom Lesotho, but +2665 is more precise
    assert router.route_for("+26662000002") == "ECONET"  # "Econet Ezi-Cel Lesotho"
    assert router.route_for("+27821234567") == "africastalking"  # Vodacom South Africa, kept off the Lesotho link
    assert router.route_for("+26622000000") == "DEFAULT"  # a fixed line: no carrier


@pytest.fixture
def kannel_app(make_app, db, redis):
    return make_app(webhook_token=TOKEN)


def test_a_kannel_report_before_the_worker_records_the_send_is_kept_then_applied_in_order(kannel_app, db):
    client = kannel_app.test_client()
    with db.session() as session:
        message = owe_text(session, get_or_create_contact(session, "+26658000009"), MessageKind.STAFF, "Dumela")
        message_id = message.id
    url = f"/webhooks/kannel/sms/delivery?token={TOKEN}&route=VODACOM&message={message_id}&phone=26658000009"

    assert client.get(f"{url}&type=8&answer=ACK/").status_code == 200
    with db.session() as session:
        [kept] = session.execute(select(DeliveryReport)).scalars().all()
        assert (kept.provider_message_id, kept.phone, kept.status) == (
            provider_message_id(message_id),
            "+26658000009",
            "KannelSmscAccepted",
        )
        row = session.get(OutboundMessage, message_id)
        row.status, row.provider_message_id = MessageStatus.SUBMITTED, provider_message_id(message_id)
    assert client.get(f"{url}&type=1&answer=stat:DELIVRD").status_code == 200
    assert client.get(f"{url}&type=2&answer=stat:UNDELIV").status_code == 200  # a final status stays
    with db.session() as session:
        assert session.get(OutboundMessage, message_id).status == MessageStatus.DELIVERED


@pytest.mark.parametrize(
    "query",
    ["message=12&type=3", "message=abc&type=1", "type=1", "message=12"],
)
def test_a_kannel_report_kannel_could_not_have_sent_is_a_400(kannel_app, query):
    response = kannel_app.test_client().get(f"/webhooks/kannel/sms/delivery?token={TOKEN}&{query}")
    assert response.status_code == 400


def test_kannel_callbacks_keep_the_token_rule(kannel_app):
    client = kannel_app.test_client()
    assert client.get("/webhooks/kannel/sms/delivery?message=1&type=1").status_code == 403
    assert client.get("/webhooks/kannel/sms/inbound?from=26658000001&text=STOP&id=x").status_code == 403


def test_an_sms_kannel_delivers_twice_is_stored_once(kannel_app, db):
    client = kannel_app.test_client()
    query = (
        f"token={TOKEN}&from=%2B26658000003&to=31000&text=Ke+kopa+thuso&id=9f1c&smsc=VODACOM&time=2021-03-01+10:00:00"
    )
    assert client.get(f"/webhooks/kannel/sms/inbound?{query}").status_code == 200
    assert (
        client.post(
            f"/webhooks/kannel/sms/inbound?token={TOKEN}",
            data=dict(part.split("=", 1) for part in query.replace("+", " ").replace("%2B", "+").split("&")[1:]),
        ).status_code
        == 200
    )
    with db.session() as session:
        [stored] = session.execute(select(InboundMessage)).scalars().all()
        assert (stored.provider_id, stored.phone, stored.text, stored.route) == (
            "kannel:9f1c",
            "+26658000003",
            "Ke kopa thuso",
            "VODACOM",
        )
