"""The scenario generator: deterministic, loadable, and the planted truth is really in the files.

Every check reads the written files (as an ingest job would) rather than the generator's internals.
One moderate scenario (40k users, 14 days, ~1.3M rows, ~2 s) serves the statistical checks; small
ones serve determinism and formats.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import phonenumbers
import polars as pl
import yaml
import pytest

from ingest.contract import CHANNELS, DELIVERY_STATUSES, ENCODINGS, EVENT_TYPES
from ingest.generator import DEFINITIONS_FILE, EVENT_FILES, generate

MODERATE = {"users": 40_000, "days": 14, "seed": 11}
ISO = "%Y-%m-%dT%H:%M:%S%#z"
HOUR = 3600


def read(directory: Path, kind: str, fmt: str = "csv") -> pl.DataFrame:
    """One event file with every column as text (nulls kept), whatever the format."""
    path = directory / f"{kind}.{fmt}"
    if fmt == "csv":
        frame = pl.read_csv(path, infer_schema=False)
    elif fmt == "jsonl":
        frame = pl.read_ndjson(path, infer_schema_length=None)
    else:
        frame = pl.read_parquet(path)
    return frame.with_columns(pl.all().cast(pl.String))


def ts(column: str) -> pl.Expr:
    """An ISO-8601 text column (Z or ±HH:MM) as epoch seconds."""
    return pl.col(column).str.to_datetime(ISO, time_zone="UTC").dt.epoch("s")


def epoch(text: str) -> int:
    """A ground-truth ISO instant as epoch seconds."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def human(clicks: pl.DataFrame, truth: dict) -> pl.DataFrame:
    """Clicks whose user agent is not a known link-preview bot (what the ingestor will flag)."""
    return clicks.filter(~pl.col("user_agent").str.to_lowercase().str.contains_any(truth["bot_user_agent_tokens"]))


def digest(directory: Path) -> dict[str, str]:
    """SHA-256 of every file in a directory."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A moderate CSV scenario and its ground truth."""
    out = tmp_path_factory.mktemp("moderate")
    truth = generate(out, **MODERATE)
    return out, truth


@pytest.fixture(scope="module")
def frames(scenario: tuple[Path, dict]) -> dict[str, pl.DataFrame]:
    """All event files of the moderate scenario, as text."""
    out, _ = scenario
    return {kind: read(out, kind) for kind in EVENT_FILES}


@pytest.fixture(scope="module")
def delivered(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """message_id of every message with a 'delivered' receipt in the files."""
    return frames["deliveries"].filter(pl.col("status") == "delivered").select("message_id").unique()


# -- determinism and file integrity -------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    args = {"users": 1500, "days": 3}
    generate(tmp_path / "a", seed=5, **args)
    generate(tmp_path / "b", seed=5, **args)
    generate(tmp_path / "c", seed=6, **args)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert set(a) == {f"{k}.csv" for k in EVENT_FILES} | {"ground_truth.json", DEFINITIONS_FILE}
    assert a == b
    # the definitions depend on the window, not the seed
    assert all(a[name] != c[name] for name in a if name != DEFINITIONS_FILE)


def test_parquet_output_is_deterministic_too(tmp_path: Path) -> None:
    generate(tmp_path / "a", users=800, days=2, seed=3, fmt="parquet")
    generate(tmp_path / "b", users=800, days=2, seed=3, fmt="parquet")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_all_formats_hold_identical_content(tmp_path: Path) -> None:
    truths = {}
    for fmt in ("csv", "jsonl", "parquet"):
        truths[fmt] = generate(tmp_path / fmt, users=1500, days=3, seed=9, fmt=fmt)
    assert truths["csv"]["rows_written"] == truths["jsonl"]["rows_written"] == truths["parquet"]["rows_written"]
    for kind in EVENT_FILES:
        base = read(tmp_path / "csv", kind, "csv")
        assert base.height > 0, kind
        for fmt in ("jsonl", "parquet"):
            other = read(tmp_path / fmt, kind, fmt)
            assert other.columns == base.columns, (kind, fmt)
            assert other.equals(base), (kind, fmt)


def test_rows_written_match_files(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame]) -> None:
    out, truth = scenario
    on_disk = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    assert on_disk["rows_written"] == truth["rows_written"]
    for kind in EVENT_FILES:
        assert truth["files"][kind] == f"{kind}.csv"
        assert frames[kind].height == truth["rows_written"][kind], kind
        assert frames[kind].height > 0, kind
    assert truth["files"]["experiments"] == DEFINITIONS_FILE
    assert truth["rows_written"]["experiments"] == len(yaml.safe_load((out / DEFINITIONS_FILE).read_text())["experiments"])
    assert truth["total_rows"] == sum(f.height for f in frames.values()) + truth["rows_written"]["experiments"]


def test_columns_are_contract_input_names(frames: dict[str, pl.DataFrame]) -> None:
    for kind, frame in frames.items():
        allowed = {f.input_name for f in EVENT_TYPES[kind].input_fields}
        assert set(frame.columns) <= allowed, (kind, set(frame.columns) - allowed)
        assert frame.columns[:2] == ["event_id", "occurred_at"]


def test_only_planted_duplicates_repeat_an_event_id(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame]) -> None:
    _, truth = scenario
    for kind, frame in frames.items():
        extra = frame.height - frame["event_id"].n_unique()
        assert extra == truth["duplicates"][kind], kind
    deliveries = frames["deliveries"].with_row_index("line")
    assert truth["duplicates"]["deliveries"] > 50
    # A repeated event_id repeats the whole row, and the copy comes later in the file, out of time order.
    assert deliveries.drop("line").unique().height == deliveries["event_id"].n_unique()
    copies = deliveries.filter(pl.col("event_id").is_duplicated())
    spans = copies.group_by("event_id").agg(pl.col("line").min().alias("first"), pl.col("line").max().alias("last"))
    assert (spans["last"] > spans["first"]).all()
    times = deliveries.select(ts("occurred_at"))["occurred_at"]
    assert (times.diff().drop_nulls() < 0).sum() >= truth["duplicates"]["deliveries"] // 2
    prefixes = {kind: frame["event_id"].str.split("-").list.first().unique().to_list() for kind, frame in frames.items()}
    assert len({p[0] for p in prefixes.values()}) == len(frames) and all(len(p) == 1 for p in prefixes.values())


def test_every_row_is_loadable(frames: dict[str, pl.DataFrame]) -> None:
    for kind, frame in frames.items():
        for column in ("occurred_at", "scheduled_for"):
            if column not in frame.columns:
                continue
            text = frame[column]
            assert text.null_count() == 0, (kind, column)
            assert text.str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$").all(), (kind, column)
            assert frame.select(ts(column))[column].null_count() == 0
        assert frame["event_id"].null_count() == 0
    sends, deliveries = frames["sends"], frames["deliveries"]
    assert set(sends["channel"].unique()) <= set(CHANNELS)
    assert set(deliveries["status"].unique()) <= set(DELIVERY_STATUSES)
    assert set(sends["encoding"].drop_nulls().unique()) <= set(ENCODINGS)
    sms = sends["channel"] == "sms"
    assert (sends["segments"].is_not_null() == sms).all() and (sends["encoding"].is_not_null() == sms).all()
    assert sends["segments"].drop_nulls().cast(pl.Int64).is_between(1, 255).all()
    assert sends["priority"].cast(pl.Int64).is_between(0, 9).all()
    assert frames["dwells"]["dwell_seconds"].cast(pl.Float64).is_between(0, 86400).all()
    assert (frames["conversions"]["value"].cast(pl.Float64) >= 0).all()
    # Mostly UTC "Z", a small share written with another offset for the same instant.
    local = sends.filter(~pl.col("occurred_at").str.ends_with("Z")).height / sends.height
    assert 0.005 < local < 0.05


def test_phones_are_valid_e164_for_their_country(frames: dict[str, pl.DataFrame]) -> None:
    users = frames["users"].unique("user_id")
    assert users["phone"].n_unique() == users.height
    for phone, country in users.select("phone", "country").iter_rows():
        number = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.region_code_for_number(number) == country, (phone, country)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == phone
    sms = frames["sends"].filter(pl.col("channel") == "sms")
    assert sms.join(users, left_on=["user_id", "recipient"], right_on=["user_id", "phone"], how="anti").height == 0
    replies = frames["replies"]
    assert replies.join(users, left_on=["user_id", "sender"], right_on=["user_id", "phone"], how="anti").height == 0


# -- campaign logic ---------------------------------------------------------------------------------------

def test_sends_respect_consent_at_send_time(frames: dict[str, pl.DataFrame]) -> None:
    users = frames["users"].with_columns(ts("occurred_at").alias("t")).sort("t")
    sends = frames["sends"].with_columns(ts("occurred_at").alias("t")).sort("t")
    versions = users.select("user_id", "t", "consent_sms", "consent_email", "consent_push")
    joined = sends.join_asof(versions, on="t", by="user_id", strategy="backward", check_sortedness=False)
    assert joined["consent_sms"].null_count() == 0
    for channel in ("sms", "email", "push"):
        rows = joined.filter(pl.col("channel") == channel)
        assert rows.height > 0
        assert (rows[f"consent_{channel}"] == "true").all(), channel
    # Opt-outs happened (STOP replies -> a new profile version) and stopped later SMS.
    assert (users.group_by("user_id").len()["len"] > 1).sum() > 0
    never = users.filter(pl.col("consent_sms") == "false").group_by("user_id").agg(pl.len()).height
    assert never > 0


def test_holdout_units_are_assigned_but_never_sent(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame]) -> None:
    _, truth = scenario
    exp = next(e for e in truth["experiments"] if e["id"] == "exp_cart_holdout")
    assignments = frames["assignments"].filter(pl.col("experiment_id") == exp["id"])
    holdout = assignments.filter(pl.col("variant") == "holdout")
    assert holdout.height > 100
    share = holdout.height / assignments.height
    assert abs(share - exp["split"]["holdout"]) < 4 * math.sqrt(0.09 / assignments.height)
    cart = frames["sends"].filter(pl.col("campaign_id") == exp["campaign_id"])
    assert cart.height > 0
    assert cart.join(holdout, on="user_id", how="semi").height == 0
    # every sent cart message belongs to an assigned unit of the treatment arm
    treated = assignments.filter(pl.col("variant") == "treatment")
    assert cart.join(treated, on="user_id", how="anti").height == 0
    assert (cart["variant"] == "treatment").all()


def test_every_experiment_send_has_an_earlier_assignment(frames: dict[str, pl.DataFrame]) -> None:
    assignments = frames["assignments"]
    assert assignments.select("experiment_id", "unit_id").is_duplicated().sum() == 0
    assert (assignments["unit_id"] == assignments["user_id"]).all()
    sends = frames["sends"].filter(pl.col("experiment_id").is_not_null())
    joined = sends.join(assignments, on=["user_id", "experiment_id"], how="left", suffix="_a")
    assert joined["variant_a"].null_count() == 0
    assert (joined["variant"] == joined["variant_a"]).all()
    assert (joined.select(ts("occurred_at_a") <= ts("occurred_at"))).to_series().all()
    assert set(assignments["experiment_id"].unique()) == {
        "exp_promo_wording", "exp_bill_personalisation", "exp_cart_holdout", "exp_parcel_aa"}


def test_cart_email_only_follows_an_unclicked_sms_a_day_later(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame]) -> None:
    _, truth = scenario
    cart = frames["sends"].filter(pl.col("campaign_id") == "cart_abandonment").with_columns(
        ts("scheduled_for").alias("sched"))
    sms = cart.filter(pl.col("channel") == "sms").select("user_id", "message_id", "sched")
    email = cart.filter(pl.col("channel") == "email").select("user_id", (pl.col("sched") - 24 * HOUR).alias("sms_sched"),
                                                             pl.col("sched").alias("email_sched"))
    assert email.height > 20
    assert set(cart["channel"].unique()) == {"sms", "email"}
    clicks = human(frames["clicks"], truth).with_columns(ts("occurred_at").alias("t")).select("message_id", "t")
    first_click = clicks.group_by("message_id").agg(pl.col("t").min().alias("first_click"))
    pairs = email.join(sms, left_on=["user_id", "sms_sched"], right_on=["user_id", "sched"], how="left")
    assert pairs["message_id"].null_count() == 0, "an e-mail without the SMS 24 h before it"
    pairs = pairs.join(first_click, on="message_id", how="left")
    assert pairs.filter(pl.col("first_click") < pl.col("email_sched")).height == 0
    # Conversely, every SMS without a human click for 24 h gets its e-mail (if the user consents to e-mail).
    end = epoch(truth["end"])
    consent = frames["users"].filter(pl.col("consent_email") == "true").select("user_id").unique()
    due = (sms.join(consent, on="user_id", how="semi").join(first_click, on="message_id", how="left")
           .filter((pl.col("sched") + 24 * HOUR < end - HOUR)
                   & (pl.col("first_click").is_null() | (pl.col("first_click") >= pl.col("sched") + 24 * HOUR))))
    assert due.height > 20
    got = due.join(email, left_on=["user_id", "sched"], right_on=["user_id", "sms_sched"], how="semi")
    assert got.height == due.height
    clicked = sms.join(first_click, on="message_id").filter(pl.col("first_click") < pl.col("sched") + 24 * HOUR)
    assert clicked.height > 0
    assert clicked.join(email, left_on=["user_id", "sched"], right_on=["user_id", "sms_sched"], how="semi").height == 0


# -- planted effects and incidents --------------------------------------------------------------------------

def arm_click_rates(frames: dict[str, pl.DataFrame], delivered: pl.DataFrame, truth: dict, experiment: str) -> dict:
    """Per arm: delivered messages and those with at least one human click."""
    sends = frames["sends"].filter(pl.col("experiment_id") == experiment).select("message_id", "variant")
    clicked = human(frames["clicks"], truth).select("message_id").unique().with_columns(pl.lit(1).alias("clicked"))
    per = (sends.join(delivered, on="message_id", how="semi").join(clicked, on="message_id", how="left")
           .group_by("variant").agg(pl.len().alias("n"), pl.col("clicked").sum().alias("k")))
    return {row["variant"]: (row["n"], row["k"]) for row in per.iter_rows(named=True)}


def log_ratio_and_se(control: tuple[int, int], treatment: tuple[int, int]) -> tuple[float, float]:
    """log(p_t / p_c) and its delta-method standard error for two binomial proportions."""
    (n0, k0), (n1, k1) = control, treatment
    p0, p1 = k0 / n0, k1 / n1
    se = math.sqrt((1 - p0) / (n0 * p0) + (1 - p1) / (n1 * p1))
    return math.log(p1 / p0), se


def test_planted_promo_lift_is_visible(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame],
                                       delivered: pl.DataFrame) -> None:
    _, truth = scenario
    exp = next(e for e in truth["experiments"] if e["id"] == "exp_promo_wording")
    assert exp["planted_relative_effect"] == pytest.approx(0.23)
    rates = arm_click_rates(frames, delivered, truth, exp["id"])
    control, treatment = rates[exp["control"]], rates[exp["treatment"]]
    assert min(control[1], treatment[1]) > 1000  # clicks per arm: enough for a ~4 % standard error
    # The effect is randomised at the user level and messages of one user share attributes, so allow
    # 4 standard errors (the design effect here is small: a user gets ~3 promotions in 14 days).
    estimate, se = log_ratio_and_se(control, treatment)
    assert abs(estimate - math.log(1.23)) < 4 * se, (math.exp(estimate), se)
    assert estimate > 3 * se  # and it is clearly detectable, not a null result
    observed = exp["observed"]["arms"]
    assert {a["arm"]: (a["delivered"], a["human_clicked_messages"]) for a in observed} == rates


def test_aa_test_shows_no_effect(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame], delivered: pl.DataFrame) -> None:
    _, truth = scenario
    exp = next(e for e in truth["experiments"] if e["id"] == "exp_parcel_aa")
    assert exp["planted_relative_effect"] == 0.0
    rates = arm_click_rates(frames, delivered, truth, exp["id"])
    estimate, se = log_ratio_and_se(rates["a1"], rates["a2"])
    assert abs(estimate) < 4 * se


def test_bill_personalisation_raises_payments(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame],
                                              delivered: pl.DataFrame) -> None:
    _, truth = scenario
    exp = next(e for e in truth["experiments"] if e["id"] == "exp_bill_personalisation")
    assert exp["planted_relative_effect"] == pytest.approx(0.15)
    # A user gets at most one bill reminder in 14 days, and payments only ever follow bill reminders
    # (organic conversions are purchases), so payments per delivered reminder can be read per user.
    reminders = (frames["sends"].filter(pl.col("experiment_id") == exp["id"])
                 .join(delivered, on="message_id", how="semi").select("user_id", "variant"))
    assert reminders["user_id"].is_duplicated().sum() == 0
    payers = frames["conversions"].filter(pl.col("conversion_type") == "payment").select("user_id").unique()
    assert payers.join(reminders, on="user_id", how="anti").height == 0
    paid = reminders.join(payers.with_columns(pl.lit(1).alias("paid")), on="user_id", how="left")
    per = paid.group_by("variant").agg(pl.len().alias("n"), pl.col("paid").sum().alias("k"))
    arms = {row["variant"]: (row["n"], row["k"]) for row in per.iter_rows(named=True)}
    assert min(k for _, k in arms.values()) > 300
    # ~500 payments per arm give a standard error of ~6 % on the log ratio: consistent with +15 % within 4 SE.
    estimate, se = log_ratio_and_se(arms["generic"], arms["personalised"])
    assert abs(estimate - math.log(1.15)) < 4 * se, (math.exp(estimate), se)


def test_link_block_collapses_click_rate_after_start_only(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame],
                                                          delivered: pl.DataFrame) -> None:
    _, truth = scenario
    incident = next(i for i in truth["incidents"] if i["metric"] == "click_rate")
    start = epoch(incident["start"])
    users = frames["users"].unique("user_id", keep="first").select(
        "user_id", ((pl.col("region") == incident["region"]) & (pl.col("carrier") == incident["carrier"])).alias("slice"))
    clicked = human(frames["clicks"], truth).select("message_id").unique().with_columns(pl.lit(1).alias("clicked"))
    messages = (frames["sends"].join(delivered, on="message_id", how="semi").join(users, on="user_id")
                .join(clicked, on="message_id", how="left")
                .with_columns(ts("occurred_at").alias("t"), pl.col("clicked").fill_null(0)))

    def rate(frame: pl.DataFrame) -> tuple[float, int]:
        return frame["clicked"].mean(), frame.height

    before, n_before = rate(messages.filter(pl.col("slice") & (pl.col("t") < start - 6 * HOUR)))
    after, n_after = rate(messages.filter(pl.col("slice") & (pl.col("t") >= start)))
    others_before, _ = rate(messages.filter(~pl.col("slice") & (pl.col("t") < start - 6 * HOUR)))
    others_after, _ = rate(messages.filter(~pl.col("slice") & (pl.col("t") >= start)))
    assert n_before > 1500 and n_after > 1000
    assert after < 0.25 * before, (before, after)
    assert before > 0.6 * others_before  # not collapsed before the start
    assert others_after > 0.6 * others_before  # and nobody else collapsed


def test_gateway_outage_lasts_exactly_three_hours(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame],
                                                  delivered: pl.DataFrame) -> None:
    _, truth = scenario
    incident = next(i for i in truth["incidents"] if i["metric"] == "delivery_rate")
    start, end = epoch(incident["start"]), epoch(incident["end"])
    assert end - start == 3 * HOUR
    ok = delivered.with_columns(pl.lit(1).alias("ok"))
    hourly = (frames["sends"].filter(pl.col("provider") == incident["provider"])
              .join(ok, on="message_id", how="left")
              .with_columns((ts("occurred_at") // HOUR * HOUR).alias("hour"), pl.col("ok").fill_null(0))
              .group_by("hour").agg(pl.len().alias("n"), pl.col("ok").mean().alias("rate"))
              .filter(pl.col("n") >= 15))
    low = sorted(hourly.filter(pl.col("rate") < 0.6)["hour"].to_list())
    assert low == [start, start + HOUR, start + 2 * HOUR]
    normal = hourly.filter((pl.col("hour") < start) | (pl.col("hour") >= end))
    assert normal.height > 100 and normal["rate"].min() > 0.8
    other = frames["sends"].filter(pl.col("provider") != incident["provider"]).with_columns(ts("occurred_at").alias("t"))
    during = other.filter((pl.col("t") >= start) & (pl.col("t") < end)).join(ok, on="message_id", how="left")
    assert during["ok"].fill_null(0).mean() > 0.85  # only that gateway degraded


def test_log_mess_is_recorded(scenario: tuple[Path, dict], frames: dict[str, pl.DataFrame]) -> None:
    _, truth = scenario
    clicks = frames["clicks"]
    bots = clicks.height - human(clicks, truth).height
    assert bots == truth["bot_clicks"] > 0
    assert clicks.height - bots == truth["human_clicks"] > 0
    for agent in ("facebookexternalhit/1.1", "WhatsApp/2.23.20.0", "Slackbot-LinkExpanding 1.0", "TelegramBot",
                  "Google-PageRenderer", "Twitterbot/1.0", "SkypeUriPreview", "Discordbot/2.0"):
        assert clicks["user_agent"].str.contains(agent, literal=True).any(), agent
    # Bot fetches come within seconds of the handset delivery (before the human ones, on the same message).
    deliveries = frames["deliveries"].filter(pl.col("status") == "delivered").unique("event_id")
    sends = frames["sends"].select("message_id", ts("occurred_at").alias("sent"), "provider")
    bot = clicks.join(human(clicks, truth), on="event_id", how="anti").join(sends, on="message_id")
    lag = bot.select(ts("occurred_at") - pl.col("sent")).to_series()
    assert lag.quantile(0.99) < 120
    # Clock skew: one provider's receipts run ahead, visible as accepted receipts later than the others'.
    skew = truth["clock_skew"]
    accepted = (frames["deliveries"].filter(pl.col("status") == "accepted").unique("event_id").join(sends, on="message_id")
                .with_columns((ts("occurred_at") - pl.col("sent")).alias("lag"), pl.col("provider_right").alias("p")))
    lags = accepted.group_by("p").agg(pl.col("lag").median())
    skewed = lags.filter(pl.col("p") == skew["provider"])["lag"][0]
    assert skewed >= skew["seconds"] and lags.filter(pl.col("p") != skew["provider"])["lag"].max() < 10
    # Late receipts: some delivered receipts arrive hours after the send.
    late = (deliveries.join(sends, on="message_id").with_columns((ts("occurred_at") - pl.col("sent")).alias("lag"))
            .filter(pl.col("lag") > HOUR + skew["seconds"]))
    assert 0.3 * truth["late_receipts"] < late.height <= truth["late_receipts"]
    # Unattributed conversions have no campaign and are purchases; replies carry Chinese text and emoji.
    assert truth["unattributed_conversions"] > 0
    replies = frames["replies"]
    assert replies["message_id"].null_count() == replies.height
    assert replies["text"].str.contains(r"[\u4e00-\u9fff]").any()
    assert replies["text"].str.contains(r"[\U0001F300-\U0001FAFF]").any()
    assert set(replies["keyword"].drop_nulls().unique()) >= {"STOP", "HELP", "1"}
    assert replies.join(frames["sends"], left_on="in_reply_to", right_on="message_id", how="anti").height == 0
