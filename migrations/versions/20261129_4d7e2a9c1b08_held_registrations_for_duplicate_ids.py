"""held registrations for duplicate national IDs

Revision ID: 4d7e2a9c1b08
Revises: 7a3e5c1b9d20
Create Date: 2026-11-30 09:00:00.000000

A USSD registration whose national ID another beneficiary holds is kept here for staff to resolve, instead of
telling the caller that the ID is registered (docs/security.md, "USSD reveals nothing about other people").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4d7e2a9c1b08"
down_revision: str | None = "7a3e5c1b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("full_name", sa.String(length=120), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("year_of_birth", sa.Integer(), nullable=False),
        sa.Column("district", sa.String(length=20), nullable=False),
        sa.Column("village", sa.String(length=120), nullable=False),
        sa.Column("returned_from", sa.String(length=16), nullable=False),
        sa.Column("year_of_return", sa.Integer(), nullable=False),
        sa.Column("national_id_cipher", sa.Text(), nullable=True),
        sa.Column("national_id_hash", sa.String(length=64), nullable=True),
        sa.Column("household_size", sa.Integer(), nullable=False),
        sa.Column("main_need", sa.String(length=16), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("resolved_by", sa.String(length=254), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("beneficiary_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["beneficiary_id"], ["beneficiaries.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("held_registrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_registrations_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_registrations_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_registrations_national_id_hash"), ["national_id_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_registrations_status"), ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("held_registrations")
