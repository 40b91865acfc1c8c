"""The USSD engine and the menu tree. Pure Python: no Flask here, so workers and tests drive it directly.

The webhook builds one `UssdEngine` per process and calls `handle(UssdRequest(...))` per hop; when Redis or the
database is down it answers `unavailable_response()` instead, and `unserved_number_response()` to a number the
programme does not serve.
"""

from menus.engine import UssdEngine, unavailable_response, unserved_number_response
from menus.hop import UssdRequest, UssdResponse

__all__ = ["UssdEngine", "UssdRequest", "UssdResponse", "unavailable_response", "unserved_number_response"]
