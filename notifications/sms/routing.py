"""Which route an SMS goes out on (SMS_ROUTES), and the provider and send rate of each route.

A key of SMS_ROUTES is a number prefix (`+2665`: the longest matching prefix wins), a network (`vodacom`: a word of
the carrier name `phonenumbers` gives the number, e.g. "Vodacom Lesotho (Pty) Ltd"; note that South African
Vodacom numbers match `vodacom` too, which a `+27=…` prefix overrides) or `*`, in that order of precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import carrier

from config import Settings
from config.settings import AFRICASTALKING_ROUTE, ANY_NUMBER
from notifications.sms.providers.africastalking import AfricasTalkingProvider
from notifications.sms.providers.base import SmsProvider
from notifications.sms.providers.kannel import KannelProvider
from notifications.sms.queues import RATE_KEY

# Numbers whose route is remembered per router; a round asks again for the same numbers many times.
ROUTE_CACHE_SIZE = 65536
# The per-route token bucket of a Kannel route (Africa's Talking keeps the provider-wide RATE_KEY).
ROUTE_RATE_KEY = RATE_KEY + ":{route}"


@dataclass(frozen=True)
class Route:
    """One way out: its name (as SMS_ROUTES writes it), the provider behind it, its send rate and bucket."""

    name: str
    provider: SmsProvider
    rate_per_second: float
    rate_key: str


class Router:
    """Chooses the route of each number from SMS_ROUTES."""

    def __init__(self, sms_routes: tuple[tuple[str, str], ...]) -> None:
        table = dict(sms_routes)
        self.default = table.get(ANY_NUMBER, AFRICASTALKING_ROUTE)
        self.prefixes = sorted(
            ((key, route) for key, route in table.items() if key.startswith("+")),
            reverse=True,
            key=lambda pair: len(pair[0]),
        )
        self.networks = {key: route for key, route in table.items() if key != ANY_NUMBER and key[0] != "+"}
        self.route_for = lru_cache(maxsize=ROUTE_CACHE_SIZE)(self._route_for)

    def _route_for(self, phone: str) -> str:
        """The route of `phone` (E.164)."""
        for prefix, route in self.prefixes:
            if phone.startswith(prefix):
                return route
        if self.networks:
            for word in _carrier_words(phone):
                if word in self.networks:
                    return self.networks[word]
        return self.default


def _carrier_words(phone: str) -> list[str]:
    try:
        name = carrier.name_for_number(phonenumbers.parse(phone), "en")
    except phonenumbers.NumberParseException:
        return []
    return name.lower().replace("(", " ").replace(")", " ").split()


def build_routes(settings: Settings, africastalking: SmsProvider | None = None) -> dict[str, Route]:
    """Every route the settings name: Africa's Talking (the given provider, else one from the settings) and each
    Kannel route."""
    routes = {
        AFRICASTALKING_ROUTE: Route(
            AFRICASTALKING_ROUTE,
            africastalking or AfricasTalkingProvider.from_settings(settings),
            settings.sms_rate_per_second,
            RATE_KEY,
        )
    }
    for kannel in settings.kannel_routes:
        provider = KannelProvider(kannel, settings.kannel_callback_url, settings.webhook_token)
        routes[kannel.name] = Route(
            kannel.name, provider, kannel.rate_per_second, ROUTE_RATE_KEY.format(route=kannel.name)
        )
    return routes
