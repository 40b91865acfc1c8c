"""Delivery-status rules: what a provider report means for a message, whatever order reports come in."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.metrics import SMS_FINAL
from models.clock import utcnow
from models.messages import FINAL_MESSAGE_STATUSES, DeliveryReport, MessageStatus, OutboundMessage
from models.phone import mask_phone
from notifications.sms.providers import africastalking, kannel

log = logging.getLogger(__name__)

# Every provider's report status names, mapped to our lifecycle (the names never clash: Kannel's are our own).
REPORT_STATUSES = {**africastalking.REPORT_STATUSES, **kannel.REPORT_STATUSES}
# How far along the lifecycle a status is: a report never moves a message backwards.
_PROGRESS = {
    MessageStatus.SUBMITTED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.BUFFERED: 3,
    **{status: 4 for status in FINAL_MESSAGE_STATUSES},
}


class ReportOutcome:
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # a repeat, or older news than what we know
    KEPT_FOR_LATER = "kept_for_later"  # the message id is not stored yet
    UNKNOWN_STATUS = "unknown_status"


def apply_status(message: OutboundMessage, status: MessageStatus, failure_reason: str | None = None) -> bool:
    """Move `message` to `status` unless that would replace a final status or go backwards; True if it moved."""
    current = MessageStatus(message.status)
    if current in FINAL_MESSAGE_STATUSES or _PROGRESS.get(status, 0) <= _PROGRESS.get(current, 0):
        return False
    message.status = status
    if failure_reason:
        message.failure_reason = failure_reason[:64]
    if status in FINAL_MESSAGE_STATUSES:
        message.final_at = utcnow()
        count_final(message)
    return True


def count_final(message: OutboundMessage) -> None:
    """Count a message that has just reached its final status (every place that finalises one calls this)."""
    SMS_FINAL.labels(priority=str(message.priority), status=str(message.status)).inc()


def record_delivery_report(
    session: Session, provider_message_id: str, status_text: str, phone: str | None, failure_reason: str | None
) -> str:
    """Apply one delivery report; returns a `ReportOutcome`. Repeats and out-of-order reports change nothing."""
    status = REPORT_STATUSES.get(status_text)
    if status is None:
        log.warning("delivery report for %s has unknown status %r; ignored", provider_message_id, status_text)
        return ReportOutcome.UNKNOWN_STATUS
    message = session.execute(
        select(OutboundMessage).where(OutboundMessage.provider_message_id == provider_message_id)
    ).scalar_one_or_none()
    if message is None:
        session.add(
            DeliveryReport(
                provider_message_id=provider_message_id,
                phone=phone,
                status=status_text,
                failure_reason=failure_reason,
            )
        )
        log.info("delivery report for unknown id %s (%s) kept for later", provider_message_id, mask_phone(phone))
        return ReportOutcome.KEPT_FOR_LATER
    moved = apply_status(message, status, failure_reason)
    log.info("message %s report %s: %s", message.id, status_text, "applied" if moved else "unchanged")
    return ReportOutcome.APPLIED if moved else ReportOutcome.UNCHANGED


def apply_kept_reports(session: Session, messages: list[OutboundMessage]) -> None:
    """Apply reports that arrived before these messages' provider ids were stored, then drop them."""
    by_id = {message.provider_message_id: message for message in messages if message.provider_message_id}
    if not by_id:
        return
    kept = session.execute(
        select(DeliveryReport).where(DeliveryReport.provider_message_id.in_(by_id)).order_by(DeliveryReport.id)
    ).scalars()
    for report in kept:
        apply_status(by_id[report.provider_message_id], REPORT_STATUSES[report.status], report.failure_reason)
        session.delete(report)
