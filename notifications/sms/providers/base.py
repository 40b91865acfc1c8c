"""The SMS provider interface: send a text to some numbers, learn what became of each number.

The rest of the gateway sees only `SmsProvider.send` and `RecipientResult`; each provider (Africa's Talking, a
Kannel route) is one module of this package that speaks its own API and answers in these terms.

What the caller must do with each answer:
- `Outcome.ACCEPTED`: store `message_id`; delivery comes later as a delivery report.
- `Outcome.RETRY`: send that number again later (provider trouble, or an answer that did not mention it).
- `Outcome.PERMANENT`: never retry (invalid number, blacklist, do-not-disturb, bad sender ID...).
- `Outcome.NO_CREDIT`: the account is out of credit; pause sending and tell staff, then retry.
- `ProviderUnavailableError`: the whole call failed in a retryable way; retry the whole batch later.
- `ProviderRejectedError`: the whole call was refused (bad API key, bad request); retrying will not help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the provider took the message; delivery is reported later
    RETRY = "retry"  # not taken, for a reason that may pass: try again later
    PERMANENT = "permanent"  # not taken, and never will be: do not retry
    NO_CREDIT = "no_credit"  # not taken because the account is out of credit: pause sending, tell staff


@dataclass(frozen=True)
class RecipientResult:
    """What the provider said about one number of a send call."""

    phone: str
    outcome: Outcome
    message_id: str | None  # the provider's messageId when accepted; delivery reports carry it as `id`
    status_code: int | None
    status: str  # the provider's status text, e.g. "Success", "InvalidPhoneNumber"
    cost: str | None  # as the provider writes it, e.g. "LSL 0.3000"
    parts: int | None
    error: str | None  # a human-readable reason when not accepted

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @classmethod
    def refused(cls, phone: str, outcome: Outcome, error: str, status: str = "") -> RecipientResult:
        """A result the provider did not write (a failed call, a number it never saw), with the reason."""
        return cls(phone, outcome, message_id=None, status_code=None, status=status, cost=None, parts=None, error=error)

    @classmethod
    def retry(cls, phone: str, error: str) -> RecipientResult:
        return cls.refused(phone, Outcome.RETRY, error)

    @classmethod
    def permanent(cls, phone: str, error: str) -> RecipientResult:
        return cls.refused(phone, Outcome.PERMANENT, error)

    @classmethod
    def no_credit(cls, phone: str, error: str) -> RecipientResult:
        return cls.refused(phone, Outcome.NO_CREDIT, error)


class SmsProvider(Protocol):
    """What the dispatcher needs of a provider. `batch_size` is how many numbers one call may carry: the dispatcher
    never gives a call more (Kannel's sendsms takes one number a call; Africa's Talking takes many)."""

    batch_size: int

    def send(self, text: str, phones: list[str], message_ids: Sequence[int] | None = None) -> list[RecipientResult]:
        """Send `text` to every number of `phones` (E.164) in one call; one result per distinct number, in order.

        `message_ids` are the gateway's own ids of those messages, in the same order, for providers whose delivery
        reports come back to a URL the gateway builds per message (Kannel's dlr-url).
        """
        ...


class CallbackError(ValueError):
    """A provider callback that the provider could not have sent (a missing or malformed field): answered 400."""


@dataclass(frozen=True)
class IncomingSms:
    """An SMS a person sent, as any provider's callback carries it, before the number is normalised."""

    provider_id: str  # the provider's id of the message: a re-sent callback carries the same one
    raw_phone: str
    text: str
    to: str | None = None
    link_id: str | None = None
    network_code: str | None = None
    sent_at: datetime | None = None
    route: str | None = None  # the route it came in on, when the provider says (Kannel's smsc id)


class ProviderError(Exception):
    """The whole send call failed; `status_code` is the HTTP status when there was an answer at all."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ProviderUnavailableError(ProviderError):
    """The whole call failed in a way that may pass (network error, timeout, HTTP 5xx or 429): retry the batch.

    `outcome_unknown` is true when the request may have reached the provider and been accepted anyway (a read
    timeout, a 2xx answer we could not read): a retry can then send a duplicate, which the caller may prefer to
    an SMS that is never sent, but should know about.
    """

    def __init__(self, message: str, *, status_code: int | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message, status_code=status_code)
        self.outcome_unknown = outcome_unknown


class ProviderRejectedError(ProviderError):
    """The whole call was refused for good (any other non-2xx, e.g. 401 for a bad API key): do not retry as is."""


def callback_field(form: dict[str, str], name: str, *, required: bool = True, max_length: int = 200) -> str:
    """One field of a callback, checked: present when required, not too long, no NUL (PostgreSQL cannot store one)."""
    value = form.get(name)
    if value is None or (required and not value.strip()):
        if required:
            raise CallbackError(f"missing form field: {name}")
        return ""
    if len(value) > max_length:
        raise CallbackError(f"form field {name} is longer than {max_length} characters")
    if "\x00" in value:  # no provider sends one, and PostgreSQL cannot store it
        raise CallbackError(f"form field {name} holds a NUL character")
    return value


def without_nul(text: str) -> str:
    """An SMS text with any NUL replaced: a gateway's encoding slip (GSM-7 writes @ as 0x00). The message is kept
    rather than refused, which would only make the provider re-send it for ever."""
    return text.replace("\x00", " ")
