"""The dbt seeds that mirror Python vocabularies stay equal to them."""

import csv

from ingest import keywords
from ingest.contract import STATUS_PRECEDENCE
from tests.conftest import ROOT

SEEDS = ROOT / "dbt_project" / "seeds"


def test_the_status_precedence_seed_is_the_contracts():
    with open(SEEDS / "delivery_status_precedence.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["status"]: int(r["precedence"]) for r in rows} == STATUS_PRECEDENCE
    assert [r["status"] for r in rows if r["is_delivered"] == "true"] == ["delivered"]


def test_the_reply_keywords_seed_is_the_grammar_the_receiver_acts_on():
    with open(SEEDS / "reply_keywords.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["keyword"]: r["meaning"] for r in rows} == {
        **{w: "opt_out" for w in keywords.OPT_OUT}, **{w: "opt_in" for w in keywords.OPT_IN},
        **{w: "help" for w in keywords.HELP}}


def test_the_grammar_reads_commands_in_short_sentences_only():
    assert keywords.keyword("please stop texting me") == "STOP"
    assert keywords.keyword("Opt out") == "OPTOUT" and keywords.meaning("OPTOUT") == "opt_out"
    assert keywords.keyword("  stop. ") == "STOP" and keywords.keyword("Unstop") == "UNSTOP"
    assert keywords.keyword("I will stop by the shop before the end of the day") == "I"
    assert keywords.keyword("2") == "2" and keywords.meaning("2") is None
    assert keywords.keyword("help!") == "HELP" and keywords.meaning("HELP") == "help"
    assert keywords.keyword("") is None and keywords.keyword("…") is None
