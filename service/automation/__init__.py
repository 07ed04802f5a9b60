"""The LeanIX <-> automation loop.

    leanix.* event --rules.py (match)--> starter.py (record intent, start the run)
    vendor callback event, or poller.py --> completion.py (win completion once)
                                        --> writeback.py (update the Fact Sheet)

handlers.py registers the two entry points with the worker; loop guards (our own
write-backs, out-of-order events) live in guards.py; schedules.py checks at start-up that
Leapwork schedules define the variables our runs pass.
"""
