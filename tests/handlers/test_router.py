"""The router's promises: one clear sentence for every mistake, nothing changed
by strangers, never a stack trace in chat."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from coopbot.app import CoopBot
from coopbot.chat import Incoming, MenuEntry
from coopbot.clock import FakeClock
from coopbot.i18n import catalogue
from coopbot.models import AuditEntry, Identity, Invite, Member
from handlers.registry import Commands, Context, Reply, command, parse, split_args
from tests.conftest import Coop, make_config, postgres_schema
from tests.storage.conftest import driver_statements

NASTY_ARGUMENTS = [
    "",
    "x" * 5000,
    "🚲🔥💶",
    "<b>bold</b> &amp; <script>",
    "'; DROP TABLE member; --",
    '"unbalanced',
    "J-999999999999999999999",
    "-1",
]
INTERNAL_ERROR = {catalogue(lang)["registry.internal_error"] for lang in ("en", "fr")}


def counts(coop: Coop) -> tuple[int, int, int, int]:
    with coop.session() as session:
        return (
            session.scalar(select(func.count(Member.id))) or 0,
            session.scalar(select(func.count(Identity.id))) or 0,
            session.scalar(select(func.count(Invite.id))) or 0,
            session.scalar(select(func.count(AuditEntry.id))) or 0,
        )


def test_parse_accepts_both_prefixes_and_bot_suffix() -> None:
    assert parse("/whoami") == ("whoami", "")
    assert parse("!WhoAmI") == ("whoami", "")
    assert parse("/accept@coop_bot J-12") == ("accept", "J-12")
    assert parse("hello") is None
    assert parse("/") is None


def test_commands_are_found_by_name_or_alias_and_each_name_is_taken_once() -> None:
    @command("greet", area="members", role=None, aliases=("salut",))
    def greet(ctx: Context) -> Reply:
        return "hi"

    @command("hush", area="members", role="coordinator")
    def hush(ctx: Context) -> Reply:
        return None

    @command("salut", area="members")
    def salut(ctx: Context) -> Reply:
        return "salut"

    @command("wave", area="members", aliases=("greet",))
    def wave(ctx: Context) -> Reply:
        return "wave"

    commands = Commands([greet, hush])
    assert commands.lookup("salut") is commands.lookup("greet") and commands.lookup("salut") is not None
    assert commands.lookup("hello") is None
    assert [cmd.name for cmd in commands.for_member(None)] == ["greet"]
    assert commands.menu() == [MenuEntry("greet", "members.help.greet")]
    for taken, clash in (("salut", salut), ("greet", wave)):
        with pytest.raises(ValueError, match=f"command '{taken}' declared twice"):
            commands.add(clash)
    assert commands.names() == ["greet", "hush"], "a refused command leaves nothing behind"


def test_a_handler_module_declares_its_commands_without_registering_them(declared_commands: Commands) -> None:
    """Importing a handler module fills no global table: only a collection (the bot's, at
    start) holds its commands."""
    import handlers.members

    assert declared_commands.lookup("aide") is declared_commands.lookup("help")
    assert Commands().lookup("help") is None
    help_ = declared_commands.lookup("help")
    assert help_ is not None and help_.fn is handlers.members.help_


def test_a_command_addressed_to_another_bot_is_not_carried_out(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    before = counts(coop)

    def said(text: str, bot_name: str | None) -> Incoming:
        return Incoming("console", alice, "coop", is_private=False, text=text, bot_name=bot_name)

    # in a group the co-op shares with other bots: /invite meant for another one creates nothing
    assert coop.bot.router.handle(said("/invite@OtherBot member", "coop_bot")) == []
    assert coop.bot.router.handle(said("!invite@other_bot", None)) == []
    assert counts(coop) == before
    # addressed to this bot, whatever the case, or to no bot: carried out
    assert "/join" in coop.bot.router.handle(said("/invite@Coop_Bot", "coop_bot"))[0].text
    assert "/join" in coop.bot.router.handle(said("/invite", "coop_bot"))[0].text
    assert counts(coop)[2] == before[2] + 2


async def test_a_stranger_is_told_how_to_join_and_nothing_is_created(coop: Coop) -> None:
    coop.member("Alice", "admin")
    before = counts(coop)
    for text in ("hello", "/whoami", "/invite admin", "/role Alice member", "/members"):
        reply = await coop.replies("mallory", text)
        assert len(reply) == 1
        assert "/join CODE" in reply[0].text
    assert counts(coop) == before


async def test_strangers_chatter_in_a_group_is_ignored(coop: Coop) -> None:
    assert await coop.replies("mallory", "nice weather", private=False) == []


async def test_an_unknown_command_suggests_the_closest(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    assert "Did you mean /whoami?" in await coop.say(alice, "/whoamii")
    assert "Type /help" in await coop.say(alice, "/xyzzy")


@pytest.mark.parametrize("role", ["member", "coordinator", "admin"])
async def test_every_command_answers_bad_arguments_with_one_sentence(coop: Coop, role: str) -> None:
    me = coop.member("Alice", role, handle="alice")
    coop.member("Admin", "admin", handle="root")
    for name in sorted(coop.bot.commands.names()):
        if name in ("leave",):
            continue
        for argument in NASTY_ARGUMENTS:
            replies = await coop.replies(me, f"/{name} {argument}".strip())
            assert replies, f"/{name} {argument[:20]!r} got no answer"
            assert all(r.text.strip() for r in replies)
            assert not {r.text for r in replies} & INTERNAL_ERROR, f"/{name} {argument[:20]!r} crashed"


@pytest.fixture
def fuzz_coop(coop: Coop) -> Iterator[Coop]:
    coop.member("Alice", "admin")
    coop.member("Bob", "member")
    yield coop


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user=st.sampled_from(["alice", "bob", "stranger", "🙂", "x" * 300]),
    prefix=st.sampled_from(["", "/", "!"]),
    data=st.data(),
    argument=st.text(max_size=300),
    private=st.booleans(),
)
def test_random_text_from_random_users_never_breaks_the_router(
    fuzz_coop: Coop, user: str, prefix: str, data: st.DataObject, argument: str, private: bool
) -> None:
    coop = fuzz_coop
    command = prefix + data.draw(st.sampled_from([*sorted(coop.bot.commands.names()), "nope", "HELP"]), "command")
    before = counts(coop)
    incoming = Incoming(
        platform="console", user_id=user, chat_id=user if private else "coop",
        is_private=private, text=f"{command} {argument}",
    )
    replies = coop.bot.router.handle(incoming)
    assert not {r.text for r in replies} & INTERNAL_ERROR
    if user not in ("alice", "bob"):
        assert counts(coop) == before, "a stranger changed something"


# --- the members kept between messages, and a race's commits -----------------------------------


async def rush(coop: Coop) -> str:
    """An admin, Carol, who posts two jobs; Bob (a coordinator) and Dan ride. Dan wins J-1 and Bob
    taps too late: the winner's commit wrote jobs, offers and notices, and when Dan last took a job."""
    carol = coop.member("Carol", "admin")
    bob, dan = coop.member("Bob", "coordinator"), coop.member("Dan")
    for rider in (bob, dan):
        await coop.say(rider, "/available")
    await coop.say(carol, "/newjob Shop A -> Home A\nShop B -> Home B")
    assert (await coop.say(dan, "", button="/accept J-1")).startswith("It's yours: J-1")
    assert await coop.say(bob, "", button="/accept J-1") == "J-1 was already taken by Dan."
    return carol


@pytest.fixture
def member_reads(coop: Coop) -> list[str]:
    """Every statement the event loop's own connection (SQLite) sent to find who wrote a message."""
    loop = coop.bot.loop_sessions
    assert loop is not None
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "FROM member" in statement and "identity.external_id = ?" in statement:
            seen.append(statement)

    event.listen(loop.engine, "before_cursor_execute", note)
    return seen


async def tap(coop: Coop, who: str, button: str) -> str:
    """A button pressed, answered as the transports have it answered, the outbox left waiting (a
    delivery is a commit on another connection, after which the loop loads everyone afresh)."""
    [said] = await coop.bot.handle(Incoming("console", who, who, True, "", button=button, event_id=button + who))
    return said.text


async def test_a_race_won_leaves_the_riders_kept_for_their_next_tap(coop: Coop, member_reads: list[str]) -> None:
    """Loading a rider and their accounts again was half of a lost tap's cost."""
    await rush(coop)
    for rider in ("bob", "dan"):
        await tap(coop, rider, "/help")
    member_reads.clear()
    assert (await tap(coop, "dan", "/accept J-2")).startswith("It's yours: J-2")
    assert await tap(coop, "bob", "/accept J-2") == "J-2 was already taken by Dan."
    assert member_reads == []
    with coop.session() as session:  # the winner's last job is written, and is what the loop holds
        dan = session.get_one(Member, coop.member_id("dan"))
        assert dan.last_job_at == coop.clock.now()


async def test_after_a_race_a_role_changed_by_an_admin_counts_at_the_next_message(any_coop: Coop) -> None:
    carol = await rush(any_coop)
    assert "Bob" in await any_coop.say(carol, "/role bob member")
    assert "Only coordinators and admins can use /newjob" in await any_coop.say("bob", "/newjob Shop -> Home")
    assert (await any_coop.say("bob", "", button="/accept J-2")).startswith("It's yours: J-2")  # still a rider


async def test_after_a_race_a_rider_who_left_is_a_stranger_at_the_next_tap(any_coop: Coop) -> None:
    await rush(any_coop)
    await any_coop.say("bob", "/leave confirm")
    assert "To join, ask a coordinator for an invite code" in await any_coop.say("bob", "", button="/accept J-2")


async def test_after_a_race_lang_counts_at_the_next_tap(any_coop: Coop) -> None:
    await rush(any_coop)
    await any_coop.say("bob", "/lang fr")
    assert await any_coop.say("bob", "", button="/accept J-1") == "J-1 a déjà été prise par Dan."


@pytest.fixture
def pg_coop(clock: FakeClock) -> Iterator[Coop]:
    """The co-op on PostgreSQL alone (skipped without it): SQLite keeps its members in the process."""
    with postgres_schema() as url:
        bot = CoopBot(make_config(url), clock=clock)
        yield Coop(bot, clock)
        bot.dispose()


async def test_on_postgresql_a_lost_tap_sends_two_statements(pg_coop: Coop) -> None:
    """Its receipt, its rider and their last-seen time in one (`coopbot.storage.arrival`), then the
    claim's read: two round trips where there were four, besides BEGIN and COMMIT."""
    await rush(pg_coop)
    pg_coop.clock.advance(minutes=5)
    with driver_statements() as sent:
        assert await pg_coop.say("bob", "", button="/accept J-1") == "J-1 was already taken by Dan."
    tap = [sql for sql in sent if "outbox" not in sql]  # the outbox's delivery, meanwhile, is not the tap's
    assert len(tap) == 2, tap
    with pg_coop.session() as session:
        assert session.get_one(Member, pg_coop.member_id("bob")).last_seen_at == pg_coop.clock.now()


@given(st.text(alphabet=" \t\r\n\x0b\xa0ab#-J5é\"'\\", max_size=20))
def test_arguments_split_as_a_shell_splits_them_quoted_or_not(rest: str) -> None:
    """Words without quotes go past `shlex` (every tap on an offer): the same words either way."""
    try:
        expected = shlex.split(rest)
    except ValueError:  # an unbalanced quote: split on spaces
        expected = rest.split()
    assert split_args(rest) == expected
