"""The price rules in chat: `/prices` shows them to anyone, customers and strangers included.

A price nobody can read is a price nobody can question. The rules are the
co-op's governed settings, so this command only asks the service for those in
force and shows them with worked examples; members change them by vote
(`/propose ... --sets price.base=4.50`).
"""

from __future__ import annotations

from coopbot.services.dispatch import price_rules
from handlers.registry import Context, Reply, command


@command("prices", area="prices", role=None, aliases=("prix", "tarifs"), customers=True)
def prices(ctx: Context) -> Reply:
    rules = price_rules.in_force(ctx.session, ctx.config, ctx.now)
    return price_rules.prices_text(ctx.lang, rules, ctx.config.coop.currency)
