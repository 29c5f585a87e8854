"""Members use the co-op from Telegram exactly as from the console: private chats, groups, buttons."""

from __future__ import annotations

from tests.telegram.conftest import TelegramCoop, invite_code


async def test_a_founder_invites_and_a_newcomer_joins_in_a_private_chat(coop: TelegramCoop) -> None:
    api = coop.api
    founder = api.user(1001, "Fanny", "fanny")
    coop.member(founder, "admin")
    answer = await coop.ask(founder, "/invite", contains="/join")
    code = invite_code(answer)

    nour = api.user(1002, "Nour", language_code="fr")
    assert "adhérer" in await coop.ask(nour, "/start")
    welcome = await coop.ask(nour, f"/join {code}")
    assert "Nour" in welcome and "Coop Vélo" in welcome
    assert "/whoami" in await coop.ask(nour, "/help")
    whoami = await coop.ask(nour, "/whoami")
    assert whoami.startswith("Nour (n°2), membre") and "Telegram" in whoami
    # the command menu was set at start, in English and in French
    assert {c["command"] for c in api.commands["en"]} >= {"start", "help", "join", "whoami"}
    assert api.commands["fr"] != api.commands["en"]
    assert "invite" not in {c["command"] for c in api.commands["en"]}


async def test_group_commands_are_answered_in_the_group(coop: TelegramCoop) -> None:
    api, group = coop.api, coop.group
    bo = api.user(1003, "Bo")
    coop.member(bo)
    assert (await coop.ask(bo, "/whoami@coopbot_test_bot", group)).startswith("Bo (#1)")
    assert (await coop.ask(bo, "!whoami", group)).startswith("Bo (#1)")
    # in a busy group the answer quotes the question
    assert api.sent_to(group.id)[-1]["reply_to_message"]["message_id"] == 3
    # chatter and other bots' commands are not ours; a command after them is answered in order
    before = len(api.sent_to(group.id))
    api.say(bo, "hello everyone", group)
    api.say(bo, "/whoami@some_other_bot", group)
    await coop.ask(bo, "/start", group, contains="Bo")
    assert len(api.sent_to(group.id)) == before + 1


async def test_a_group_the_coop_did_not_configure_gets_one_hint_and_no_service(coop: TelegramCoop) -> None:
    api = coop.api
    stranger_group = api.group(-1009999, "Somewhere else")
    bo = api.user(1003, "Bo")
    coop.member(bo)
    hint = await coop.ask(bo, "/whoami", stranger_group)
    assert "-1009999" in hint and "group_chat_ids" in hint
    api.say(bo, "/help", stranger_group)
    await coop.ask(bo, "/start")  # processed after the group's /help
    assert len(api.sent_to(stranger_group.id)) == 1


async def test_a_private_answer_asked_in_a_group_goes_to_the_private_chat(coop: TelegramCoop) -> None:
    api, group = coop.api, coop.group
    fanny = api.user(1001, "Fanny", started=True)
    coop.member(fanny, "coordinator")
    note = await coop.ask(fanny, "/invite", group)
    assert note == "I have sent you the answer in a private chat."
    private = api.sent_to(fanny.id)
    assert len(private) == 1 and "/join" in private[0]["text"]
    assert not any("/join" in m["text"] for m in api.sent_to(group.id))


async def test_a_member_who_never_opened_a_private_chat_is_told_how(coop: TelegramCoop) -> None:
    api, group = coop.api, coop.group
    gus = api.user(1004, "Gus")
    coop.member(gus, "coordinator")
    note = await coop.ask(gus, "/invite", group)
    assert "open a private chat with me" in note
    assert api.sent_to(gus.id) == []
    # once Gus has said /start privately, the same question works
    await coop.ask(gus, "/start")
    assert await coop.ask(gus, "/invite", group) == "I have sent you the answer in a private chat."


async def test_what_members_type_is_escaped_never_interpreted(coop: TelegramCoop) -> None:
    api = coop.api
    tom = api.user(1005, "Tom & <Jerry>", started=True)
    coop.member(tom)
    whoami = await coop.ask(tom, "/whoami")
    assert whoami.startswith("Tom & <Jerry> (#1)")
    assert "&lt;Jerry&gt;" in api.sent_to(tom.id)[-1]["html"]
    unknown = await coop.ask(tom, "/<b>oops</b>")
    assert "Type /help" in unknown
