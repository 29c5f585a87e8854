"""Rosters: who rides when, planned together in advance.

A coordinator publishes slots (`/slots add mon-fri 11:30-14:30 x6`), members
take seats (`/signup S-31`), hand them on only to someone who agrees (`/swap`,
`/giveaway`), and the bot reminds them and sets them available when their slot
starts. Times are typed and shown in the co-op's timezone and stored in UTC,
so a slot planned across a change to summer time still starts at 11:30 on the
riders' watches.

- `parsing`: what a coordinator types, read into days and times.
- `slots`: publishing, listing, cancelling, signing up and off (the governed
  `signoff_hours`).
- `swaps`: handing a seat to one member or to whoever takes it first.
- `reminders`: the sweep that reminds, starts, asks at the end, posts the
  coming week's plan to the rooms and calls for riders when a slot is short
  (`remind_minutes`, `short_hours`).
- `attendance`: the rider not seen 15 minutes into their slot is asked, the
  coordinators told; nothing else.
- `worked`: each seat's worked minutes, into the ledger as shift hours
  (`slot_tolerance_minutes`).
- `calendar`: each member's slots (a coordinator's: the whole roster) as an
  iCalendar feed at a secret address (`/calendar`), revoked by a reset.
- `plan_image`: the week's plan drawn as a grid, posted with the weekly plan.
"""
