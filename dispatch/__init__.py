"""Dispatch: decide who gets what, when and on which channel, and send it — never twice.

One module per job: ``campaign`` (campaigns as data), ``contacts`` (the only raw addresses, in
ops.sqlite), ``audience``, ``templates/``, ``policies/`` (in a fixed order), ``timing``,
``assignment`` and ``allocation`` (experiments at send time), ``planner``, ``outbox`` and
``worker``, ``providers/`` (Kannel, SMTP, webhook, file), ``journeys`` and ``spooling`` (what
flows back to ingestion). Imports ``warehouse`` and ``ingest``; never ``experiments``.
"""
