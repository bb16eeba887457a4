"""The sending rules, applied by the planner in this fixed order (``ORDER``); each exclusion is
counted with its reason and shown before anything is queued:

1. ``consent`` — channel consent, opt-outs (STOP replies, the suppression list), an address; the
   first channel of the campaign's preference list that the user can receive;
2. ``dedupe`` — the campaign never reaches the same person twice on a channel (per step);
3. ``frequency_caps`` — at most N messages of the category per user per window, across channels;
4. ``quiet_hours`` — a message due in the recipient's quiet hours is deferred (never dropped);
5. ``priority`` — a higher-priority message near in time defers or drops a lower-priority one,
   across channels and campaigns already queued (then quiet hours are checked again).

Consent comes first because nothing may be decided about a person who must not be contacted; the
time-dependent rules come after the time is known.
"""

ORDER = ("consent", "dedupe", "frequency_caps", "quiet_hours", "priority")
