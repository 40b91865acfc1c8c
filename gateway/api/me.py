"""`/me`: who the token belongs to, a client's first call to check its token and see its role."""

from __future__ import annotations

from flask import Blueprint, Response, g

from gateway.auth import token_required
from models.staff import StaffUser

bp = Blueprint("me", __name__)


def staff_json(user: StaffUser) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "districts": list(user.district_list),  # empty: every district
        "active": user.active,
    }


# The `/me` route's description, for gateway/api/openapi.py.
OPENAPI_PATHS = {
    "/me": {
        "get": {
            "summary": "Who the token belongs to",
            "responses": {"200": {"description": "The staff member: id, email, role, districts, active"}},
        }
    }
}


@bp.get("/me")
@token_required
def me() -> Response:
    """Who the token belongs to: a client's first call, to check its token and see its role."""
    return staff_json(g.staff)
