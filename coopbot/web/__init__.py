"""The web door: what coopbot answers over HTTP, from inside `coopbot run`.

One aiohttp application, served in the bot's own event loop, started after
the bot and stopped before it (`coopbot.runner`), so a web request and a
chat message reach the same services through the same database, with no
second process to run or keep in step.

- `server`: the application itself (`make_app`), its middlewares (security
  headers on every answer, a cap on request bodies, a 500 without a stack
  trace for anything unexpected), `/healthz` and `/readyz`, and `WebServer`,
  which starts and stops it. Everything else is added by route adders,
  functions `(app, bot) -> None` handed to `WebServer` by the runner.
- `api` (with `problems`): the orders API for shops (`add_api_routes`).
- `public`: the co-op's public page (`add_public_routes`).
- `calendar`: each member's calendar feed, `/calendar/TOKEN.ics` (`add_calendar_routes`).

Nothing here is imported until the web server starts: `coopbot --help` and a
bot without `[web] enabled` never load aiohttp's server side.
"""
