"""The LeanIX <-> automation loop.

    leanix.* event --rules.py (match)--> starter.py (record intent, start the run)
    vendor callback event, or poller.py --> completion.py (win completion once)
                                        --> writeback.py (update the Fact Sheet)

handlers.py registers the two entry points with the worker; loop guards (our own
write-backs, out-of-order events) live in guards.py; preflight.py hands each platform its
rules' starts to check when the worker starts (Leapwork: its schedules' variables). What
differs per platform is asked of the registry (service/vendors/), never named here.
"""
