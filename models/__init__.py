"""Tables and the domain rules that belong to them. No Flask here: workers and the CLI use these directly."""

from models.base import Base
from models.db import Database
from models.grants import Grant, GrantError, GrantEvent, GrantStatus, IllegalTransitionError, PaymentChannel
from models.messages import MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.people import DISTRICTS, Beneficiary, Contact, Language, MainNeed, ReturnedFrom, Sex
from models.requests import CallbackRequest, Feedback
from models.ussd import UssdSessionRecord

__all__ = [
    "DISTRICTS",
    "Base",
    "Beneficiary",
    "CallbackRequest",
    "Contact",
    "Database",
    "Feedback",
    "Grant",
    "GrantError",
    "GrantEvent",
    "GrantStatus",
    "IllegalTransitionError",
    "Language",
    "MainNeed",
    "MessageKind",
    "MessagePriority",
    "MessageStatus",
    "OutboundMessage",
    "PaymentChannel",
    "ReturnedFrom",
    "Sex",
    "UssdSessionRecord",
]
