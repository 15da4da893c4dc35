"""Alert rules: which profile changes a CRM should act on.

=========================== ========== ==================================================
rule                        severity   fires when
=========================== ========== ==================================================
``unhappy_top_customer``    critical   a rating <= ``low_rating_max`` (or NPS <= ``low_nps_max``)
                                       from a customer whose spend is in the top fraction
``top_customer_at_risk``    warning    a top-fraction customer becomes at_risk
``cart_abandoned``          info       a session ended with items in the cart and no purchase
                                       followed within the abandonment window
=========================== ========== ==================================================
"""

from __future__ import annotations

from streamproc.decisions.lifecycle import Transition
from streamproc.decisions.rules import Population, Rules
from streamproc.records import Alert, Feedback, InputEvent
from streamproc.state.profile import Profile
from streamproc.state.sessions import CartAbandoned


def _is_low(event: Feedback, rules: Rules) -> bool:
    low_rating = event.rating is not None and event.rating <= rules.low_rating_max
    low_nps = event.nps is not None and event.nps <= rules.low_nps_max
    return low_rating or low_nps


def on_event(p: Profile, event: InputEvent, pop: Population, rules: Rules) -> list[Alert]:
    """Alerts caused by ``event`` (``p`` already includes it)."""
    if not isinstance(event, Feedback) or not _is_low(event, rules) or not pop.is_top_spender(p.spend):
        return []
    return [Alert(
        customer_id=p.customer_id, ts=event.ts, rule="unhappy_top_customer", severity="critical",
        message=f"top customer (spend {p.spend:.2f}) gave rating {event.rating}, NPS {event.nps}",
        cause_event_id=event.event_id,
        details={"rating": event.rating, "nps": event.nps, "spend": p.spend, "top_spend": pop.top_spend,
                 "channel": event.channel},
    )]


def on_transition(p: Profile, t: Transition, pop: Population) -> list[Alert]:
    """Alerts caused by a lifecycle transition."""
    if t.new != "at_risk" or not pop.is_top_spender(p.spend):
        return []
    return [Alert(
        customer_id=p.customer_id, ts=t.at, rule="top_customer_at_risk", severity="warning",
        message=f"top customer (spend {p.spend:.2f}) is at risk: {t.reason}",
        cause_event_id=None,
        details={"spend": p.spend, "top_spend": pop.top_spend, "last_seen": p.last_seen.isoformat()},
    )]


def on_cart_abandoned(p: Profile, cart: CartAbandoned) -> Alert:
    """The alert of a cart left behind, timed when its purchase window closed."""
    return Alert(
        customer_id=p.customer_id, ts=cart.at, rule="cart_abandoned", severity="info",
        message=f"cart of {cart.units} unit(s) worth {cart.value:.2f} left in the session ending {cart.session_end.isoformat()}",
        cause_event_id=None,
        details={"units": cart.units, "value": cart.value, "session_start": cart.session_start.isoformat(),
                 "session_end": cart.session_end.isoformat()},
    )
