"""Tables and the domain rules that belong to them. No Flask here: workers and the CLI use these directly."""

from models import reports  # noqa: F401  (declares the indexes the reports read on their tables)
from models.audit import AuditLog
from models.base import Base
from models.campaigns import Audience, Campaign, CampaignStatus, CovidSeries
from models.checkins import Checkin, CheckinAnswer, CheckinInvitation, CheckinQuestion
from models.db import Database
from models.grants import Grant, GrantError, GrantEvent, GrantStatus, IllegalTransitionError, PaymentChannel
from models.held import HeldRegistration
from models.messages import MessageKind, MessagePriority, MessageStatus, OutboundMessage
from models.notices import UnsentNotice
from models.people import DISTRICTS, Beneficiary, Contact, Language, MainNeed, ReturnedFrom, Sex
from models.requests import CallbackRequest, ErasureRequest, Feedback
from models.staff import ApiToken, LoginError, Role, StaffError, StaffUser
from models.ussd import UssdSessionRecord

__all__ = [
    "DISTRICTS",
    "ApiToken",
    "Audience",
    "AuditLog",
    "Base",
    "Beneficiary",
    "CallbackRequest",
    "Campaign",
    "CampaignStatus",
    "Checkin",
    "CheckinAnswer",
    "CheckinInvitation",
    "CheckinQuestion",
    "Contact",
    "CovidSeries",
    "Database",
    "ErasureRequest",
    "Feedback",
    "Grant",
    "GrantError",
    "GrantEvent",
    "GrantStatus",
    "HeldRegistration",
    "IllegalTransitionError",
    "Language",
    "LoginError",
    "MainNeed",
    "MessageKind",
    "MessagePriority",
    "MessageStatus",
    "OutboundMessage",
    "PaymentChannel",
    "ReturnedFrom",
    "Role",
    "Sex",
    "UnsentNotice",
    "StaffError",
    "StaffUser",
    "UssdSessionRecord",
]
