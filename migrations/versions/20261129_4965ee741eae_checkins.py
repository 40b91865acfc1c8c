"""follow-up check-ins

Check-ins defined by staff, their questions, one invitation per person asked, and the answers (once per person and
question).

Revision ID: 4965ee741eae
Revises: 4da874669f90
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4965ee741eae"
down_revision: str | None = "4da874669f90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title_en", sa.String(length=60), nullable=False),
        sa.Column("title_st", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("audience_json", sa.Text(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remind_after_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("reminder_campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_checkins_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(
            ["reminder_campaign_id"], ["campaigns.id"], name=op.f("fk_checkins_reminder_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    with op.batch_alter_table("checkins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkins_status"), ["status"], unique=False)
    op.create_table(
        "checkin_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("text_en", sa.String(length=100), nullable=False),
        sa.Column("text_st", sa.String(length=100), nullable=False),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("min_value", sa.Integer(), nullable=True),
        sa.Column("max_value", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["checkin_id"], ["checkins.id"], name=op.f("fk_checkin_questions_checkin_id_checkins")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_questions")),
        sa.UniqueConstraint("checkin_id", "position", name="uq_checkin_questions_position"),
    )
    with op.batch_alter_table("checkin_questions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_questions_checkin_id"), ["checkin_id"], unique=False)
    op.create_table(
        "checkin_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=4), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"], ["beneficiaries.id"], name=op.f("fk_checkin_invitations_beneficiary_id_beneficiaries")
        ),
        sa.ForeignKeyConstraint(
            ["checkin_id"], ["checkins.id"], name=op.f("fk_checkin_invitations_checkin_id_checkins")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_checkin_invitations_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_invitations")),
        sa.UniqueConstraint("checkin_id", "beneficiary_id", name="uq_checkin_invitations_person"),
    )
    with op.batch_alter_table("checkin_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_invitations_beneficiary_id"), ["beneficiary_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkin_invitations_checkin_id"), ["checkin_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkin_invitations_contact_id"), ["contact_id"], unique=False)
    op.create_table(
        "checkin_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=4), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["checkin_invitations.id"],
            name=op.f("fk_checkin_answers_invitation_id_checkin_invitations"),
        ),
        sa.ForeignKeyConstraint(
            ["question_id"], ["checkin_questions.id"], name=op.f("fk_checkin_answers_question_id_checkin_questions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkin_answers")),
        sa.UniqueConstraint("invitation_id", "question_id", name="uq_checkin_answers_once"),
    )
    with op.batch_alter_table("checkin_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkin_answers_question_id"), ["question_id"], unique=False)


def downgrade() -> None:
    op.drop_table("checkin_answers")
    op.drop_table("checkin_invitations")
    op.drop_table("checkin_questions")
    op.drop_table("checkins")
