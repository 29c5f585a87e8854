"""Running coopbot for real: one leader among several processes, what `coopbot status`
reads, backups, metrics and logs.

Nothing here is a co-op rule: these modules are the operator's side of the bot
(issue 19, "Two machines, one co-op"). `leadership` elects the one process that
polls, sweeps and delivers; `state` keeps what `coopbot status` prints in the
existing `transport_state` table (no schema change); `running` starts and stops
the leader's work as leadership comes and goes.
"""
