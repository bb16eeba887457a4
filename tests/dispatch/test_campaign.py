"""Campaign files: the object they build, and every problem reported with file, line and field."""

from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from dispatch.campaign import CampaignError, campaign_from_dict, load_campaign

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaign.yml"
    path.write_text(text)
    return path


GOOD = """\
campaign:
  id: bill_due_dec
  name: December bills
  category: transactional
  priority: 7
  channels: [sms, email]
  schedule: 2030-12-02T10:00:00+01:00
  quiet_hours: {start: "21:30", end: "07:45", transactional_may_pass: true}
  links: {pay: "https://pay.example.com/bill"}
  templates:
    sms: "Hi {{ first_name }}, pay {{ link('pay') }}"
    email: {subject: "Your bill", body: "Pay here: {{ link('pay') }}"}
  steps:
    - name: reminder
      after: 2d
      if: no_conversion
      channels: [email]
      templates: {email: {subject: "Reminder", body: "Still due: {{ link('pay') }}"}}
"""


def test_a_good_campaign_builds_every_part(tmp_path):
    campaign = load_campaign(write(tmp_path, GOOD))
    assert campaign.campaign_id == "bill_due_dec" and campaign.category == "transactional" and campaign.priority == 7
    assert campaign.channels == ("sms", "email")
    assert campaign.schedule.mode == "at" and campaign.schedule.at == datetime(2030, 12, 2, 9, 0, tzinfo=timezone.utc)
    assert campaign.quiet_hours.start == time(21, 30) and campaign.quiet_hours.end == time(7, 45)
    assert campaign.quiet_hours.transactional_may_pass
    assert campaign.frequency_cap is None  # transactional: no cap unless asked
    assert [s.name for s in campaign.steps] == ["main", "reminder"]
    assert campaign.steps[1].after == timedelta(days=2) and campaign.steps[1].condition == "no_conversion"
    assert campaign.steps[0].templates["default"]["email"].subject == "Your bill"


def test_every_shipped_example_campaign_is_valid():
    examples = sorted((ROOT / "examples" / "campaigns").glob("*.yml"))
    assert examples, "examples/campaigns/ holds the campaigns users copy"
    for path in examples:
        load_campaign(path)


def problems_of(tmp_path, text):
    with pytest.raises(CampaignError) as caught:
        load_campaign(write(tmp_path, text))
    return caught.value.problems


def test_problems_name_file_line_and_field(tmp_path):
    text = GOOD.replace("category: transactional", "category: transactionl").replace(
        "channels: [sms, email]\n  schedule", "channels: [sms, fax]\n  schedule")
    problems = problems_of(tmp_path, text)
    path = str(tmp_path / "campaign.yml")
    assert f"{path}:4: campaign.category: give transactional or promotional, not 'transactionl'" in problems
    assert any(p.startswith(f"{path}:6: campaign.channels:") and "'fax' is not a channel" in p for p in problems)


def test_a_misspelt_field_gets_a_suggestion(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("  priority: 7", "  priorty: 7"))
    assert any(":5: campaign.priorty: unknown field (did you mean 'priority'?)" in p for p in problems)


def test_a_missing_template_names_the_variant_and_channel(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace('    email: {subject: "Your bill", body: "Pay here: {{ link(\'pay\') }}"}\n', ""))
    assert any("no email template for variant 'default'" in p for p in problems)


def test_template_syntax_errors_stop_the_campaign_at_load(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("Hi {{ first_name }}", "Hi {{ first_name "))
    assert any(":11: campaign.templates.sms: template syntax error" in p for p in problems)


def test_an_undeclared_link_is_refused(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("link('pay') }}\"\n    email", "link('track') }}\"\n    email"))
    assert any("link('track') is used but not declared under links" in p for p in problems)


def test_promotions_never_pass_quiet_hours(tmp_path):
    text = GOOD.replace("category: transactional", "category: promotional")
    problems = problems_of(tmp_path, text)
    assert any("quiet_hours.transactional_may_pass: promotional messages never pass quiet hours" in p for p in problems)


def test_a_naive_schedule_time_is_refused(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("2030-12-02T10:00:00+01:00", "'2030-12-02 10:00'"))
    assert any("campaign.schedule:" in p and "no time zone" in p for p in problems)


def test_yaml_errors_have_a_line(tmp_path):
    problems = problems_of(tmp_path, "campaign:\n  id: x\n  channels: [sms\n")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'campaign.yml'}:") and "not valid YAML" in problems[0]


def test_a_field_given_twice_is_an_error(tmp_path):
    problems = problems_of(tmp_path, GOOD.replace("  priority: 7\n", "  priority: 7\n  priority: 8\n"))
    assert any("'priority' is given twice" in p for p in problems)


def test_experiment_problems_come_from_the_definition_rules(tmp_path):
    text = GOOD.replace("  templates:\n    sms:", """  experiment:
    id: exp_x
    variants: [{name: a, weight: 0.5}, {name: b, weight: 0.5}]
    goal_metrics: [converted]
  templates:
    sms:""")
    problems = problems_of(tmp_path, text)
    assert any("no control" in p for p in problems)


def test_experiment_with_holdout_writes_a_definition_with_the_holdout_arm():
    campaign = campaign_from_dict({
        "id": "promo", "category": "promotional", "channels": ["sms"],
        "experiment": {"id": "exp_p", "variants": [{"name": "a", "weight": 1, "control": True}, {"name": "b", "weight": 3}],
                       "holdout": 0.2, "goal_metrics": ["click_through"]},
        "templates": {"a": {"sms": "A"}, "b": {"sms": "B"}}})
    experiment = campaign.experiment
    assert experiment.weights == {"a": 0.25, "b": 0.75}
    assert experiment.arm_weights() == pytest.approx({"a": 0.2, "b": 0.6, "holdout": 0.2})
    import json

    assert json.loads(experiment.definition["variants"]) == [{"name": "a", "weight": 0.2}, {"name": "b", "weight": 0.6},
                                                             {"name": "holdout", "weight": 0.2}]
    assert experiment.definition["control"] == "a" and experiment.definition["campaign_id"] == "promo"
    assert campaign.frequency_cap is not None  # promotions are capped by default


def test_the_form_and_the_file_build_the_same_campaign(tmp_path):
    import yaml

    from_file = load_campaign(write(tmp_path, GOOD))
    document = yaml.safe_load(GOOD)
    from_form = campaign_from_dict(document, source=str(tmp_path / "campaign.yml"), base=tmp_path)
    assert from_form == from_file


def test_form_errors_have_fields_but_no_lines():
    with pytest.raises(CampaignError) as caught:
        campaign_from_dict({"id": "x", "category": "promotional", "channels": ["sms"], "templates": {"sms": ""}})
    assert caught.value.problems == ["templates.sms: the message text is missing"]


def test_a_schedule_after_each_users_event_needs_a_users_file_and_a_zone(tmp_path):
    import polars as pl

    from dispatch.timing import TimingError, event_due

    users = tmp_path / "carts.csv"
    users.write_text("user_id,abandoned_at\nu1,2030-01-01T10:00:00+01:00\nu2,2020-01-01T10:00:00Z\n")
    campaign = campaign_from_dict({"campaign": {
        "id": "cart", "name": "Cart", "category": "transactional", "channels": ["sms"],
        "audience": {"users_file": str(users)}, "schedule": {"after": "abandoned_at", "delay": "30m"},
        "templates": {"sms": "Your cart"}}})
    assert (campaign.schedule.mode, campaign.schedule.column, campaign.schedule.delay) == (
        "after", "abandoned_at", timedelta(minutes=30))
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    frame = pl.DataFrame({"user_id": ["u1", "u2"], "abandoned_at": ["2030-01-01T10:00:00+01:00", "2020-01-01T10:00:00Z"]})
    due = event_due(frame, campaign.schedule, now).to_list()
    assert due == [datetime(2030, 1, 1, 9, 30, tzinfo=timezone.utc), now]      # never before now
    with pytest.raises(TimingError, match="user u3: abandoned_at='2026-12-01 10:00' is not an ISO 8601 instant with its zone"):
        event_due(pl.DataFrame({"user_id": ["u3"], "abandoned_at": ["2026-12-01 10:00"]}), campaign.schedule, now)
    with pytest.raises(CampaignError, match=r"campaign\.schedule\.after: needs audience\.users_file"):
        campaign_from_dict({"campaign": {"id": "cart", "name": "Cart", "category": "transactional", "channels": ["sms"],
                                         "schedule": {"after": "abandoned_at"}, "templates": {"sms": "x"}}})
