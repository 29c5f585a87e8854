"""`coopbot customer add|list|key|webhook`: the co-op's customers, from the server's command line.

A coordinator can invite a customer from the chat (`/invite customer`); this
is for the operator who signs up a shop by hand, with its accounts and its
default pickup address, before its first order. Customers are listed apart
from members (`coopbot member list`): a customer is not a member.

Like `coopbot.cli`, building the parser imports nothing heavy; each command
imports the bot and the database when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from coopbot import platforms
from coopbot.errors import ConfigError

LANGUAGES = ("en", "fr")


def add_customer_commands(sub: Any) -> None:
    customer = sub.add_parser(
        "customer", help="manage customers: the shops, restaurants and people who order deliveries"
    ).add_subparsers(required=True, metavar="ACTION")
    add = customer.add_parser("add", help="add a customer, with their chat accounts and default pickup address")
    add.add_argument("--name", required=True, help='the name the co-op knows them by, like "Boulangerie Martin"')
    for platform in platforms.chat_platforms():
        add.add_argument(f"--{platform.name}", metavar="ID", help=platform.account_help)
    add.add_argument("--address", metavar="ADDRESS", help="where their orders are picked up when one gives none")
    add.add_argument("--lang", metavar="LANG", help="en or fr: the language the bot writes to them in "
                     "(default: the co-op's)")  # fmt: skip
    add.set_defaults(action=cmd_customer_add)
    listing = customer.add_parser("list", help="every customer: number, name, accounts, address and state")
    listing.set_defaults(action=cmd_customer_list)
    key = customer.add_parser("key", help="make a new key to the orders API for a customer (it replaces the old one)")
    key.add_argument("name", metavar="NAME", help='the customer\'s number (#2) or name, like "Boulangerie Martin"')
    key.set_defaults(action=cmd_customer_key)
    hook = customer.add_parser("webhook", help="post each step of a customer's orders to their server, signed "
                               "with a new secret (printed once); --off stops it")  # fmt: skip
    hook.add_argument("name", metavar="NAME", help='the customer\'s number (#2) or name, like "Boulangerie Martin"')
    hook.add_argument("url", metavar="URL", nargs="?", help="https://…, or http:// to localhost or 127.0.0.1 only")
    hook.add_argument("--off", action="store_true", help="no more webhooks; what is still queued is not sent")
    hook.set_defaults(action=cmd_customer_webhook)


def cmd_customer_add(args: argparse.Namespace, out: TextIO) -> int:
    from coopbot.app import CoopBot
    from coopbot.cli import add_accounts, config_of
    from coopbot.db import transaction
    from coopbot.services.members import accounts as members_svc

    language = check_language(args.lang)
    bot = CoopBot(config_of(args))
    try:
        with transaction(bot.sessions) as session:
            now = bot.clock.now()
            shop = members_svc.create_customer(session, args.name, now, address=args.address, language=language)
            add_accounts(session, shop, args, now)
            out.write(f"added customer #{shop.id} {shop.name}\n")
    finally:
        bot.dispose()
    return 0


def cmd_customer_key(args: argparse.Namespace, out: TextIO) -> int:
    """A new API key, printed once on the last line: only its hash is kept, so it cannot be shown
    again. Any key the customer had stops working at once (how a leaked key is revoked)."""
    from coopbot.app import CoopBot
    from coopbot.cli import config_of
    from coopbot.db import transaction
    from coopbot.services.members import accounts as members_svc
    from coopbot.services.members import api_keys

    bot = CoopBot(config_of(args))
    try:
        with transaction(bot.sessions) as session:
            shop = members_svc.member_by_ref(session, args.name)
            replaced = api_keys.has_key(session, shop)
            key = api_keys.issue(session, shop, bot.clock.now())
            note = "it replaces the old key, which no longer works" if replaced else "keep it secret"
            out.write(f"API key for customer #{shop.id} {shop.name} ({note}); it is shown only this once:\n{key}\n")
    finally:
        bot.dispose()
    return 0


def cmd_customer_webhook(args: argparse.Namespace, out: TextIO) -> int:
    """A new signing secret at each call, printed once on the last line: the old one stops signing
    at once (how a leaked secret is replaced). `--off`: the steps still queued are not sent."""
    from coopbot.app import CoopBot
    from coopbot.cli import config_of
    from coopbot.db import transaction
    from coopbot.services.dispatch import webhooks
    from coopbot.services.members import accounts as members_svc

    if args.off == (args.url is not None):
        raise ConfigError("give the URL to post to, or --off to stop: "
                          'coopbot customer webhook "Boulangerie Martin" https://shop.example/coopbot-hook')
    bot = CoopBot(config_of(args))
    try:
        with transaction(bot.sessions) as session:
            shop = members_svc.member_by_ref(session, args.name)
            if args.off:
                had = webhooks.clear_webhook(session, shop)
                out.write(f"customer #{shop.id} {shop.name}: {'webhooks stopped' if had else 'had no webhook'}\n")
                return 0
            secret = webhooks.set_webhook(session, bot.config, shop, args.url)
            out.write(f"customer #{shop.id} {shop.name}: each step of their orders is POSTed to "
                      f"{shop.webhook_url}, signed (X-Coopbot-Signature) with this secret, shown only "
                      f"this once:\n{secret}\n")  # fmt: skip
    finally:
        bot.dispose()
    return 0


def check_language(lang: str | None) -> str | None:
    """`--lang`, checked before anything is written: a customer is written to in en or fr."""
    if lang is None:
        return None
    if lang.lower() not in LANGUAGES:
        raise ConfigError(f"--lang {lang}: the bot writes to customers in English or French; "
                          "type --lang en or --lang fr.")
    return lang.lower()


def cmd_customer_list(args: argparse.Namespace, out: TextIO) -> int:
    """Every customer ever added, former ones too: the number is what other commands take."""
    from coopbot.app import CoopBot
    from coopbot.cli import accounts_text, config_of, state_text
    from coopbot.services.members import accounts as members_svc

    config = config_of(args)
    bot = CoopBot(config)
    try:
        with bot.sessions() as session:
            out.write("number\tname\taccounts\taddress\tstate\n")
            for shop in members_svc.every_customer(session):
                out.write(f"#{shop.id}\t{shop.name}\t{accounts_text(shop)}\t{shop.address or '-'}\t"
                          f"{state_text(shop, config)}\n")  # fmt: skip
    finally:
        bot.dispose()
    return 0
