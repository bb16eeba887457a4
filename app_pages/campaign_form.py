"""The Campaigns page's form as data: what the operator filled in → the campaign document that
``dispatch.campaign.campaign_from_dict`` validates (the same checks and messages as a campaign
file). No Streamlit here, so the mapping is tested on its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

CHANNELS = ("sms", "email")        # the form's channels; push and RCS cards need a campaign file
# the metrics fct_experiment_stats computes for every experiment
METRICS = ("click_through", "conversion_per_delivered", "clicked", "converted", "conversions", "revenue")
LINK = "link"                      # the form's one tracked link: {{ link('link') }}
SCHEDULES = ("now", "best_hour", "at")


@dataclass
class Form:
    campaign_id: str
    name: str
    category: str = "transactional"
    priority: int | None = None
    channels: tuple[str, ...] = ("sms",)
    sms: str = ""
    subject: str = ""
    email: str = ""
    link_url: str = ""
    segments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    limit: int = 0
    not_contacted_within_hours: float = 0
    experiment: bool = False
    experiment_id: str = ""
    sms_b: str = ""
    subject_b: str = ""
    email_b: str = ""
    share_b: float = 0.5
    holdout: float = 0.0
    goal_metric: str = "click_through"
    hypothesis: str = ""
    schedule: str = "now"
    at_date: date | None = None
    at_time: time | None = None
    problems: list[str] = field(default_factory=list)


def _templates(form: Form, sms: str, subject: str, body: str) -> dict:
    out: dict = {}
    if "sms" in form.channels:
        out["sms"] = sms
    if "email" in form.channels:
        out["email"] = {"subject": subject, "body": body}
    return out


def document(form: Form) -> dict:
    """The campaign document for the form (validated later by the campaign loader)."""
    spec: dict = {"id": form.campaign_id.strip(), "name": form.name.strip() or form.campaign_id.strip(),
                  "category": form.category, "channels": list(form.channels)}
    if form.priority is not None:
        spec["priority"] = int(form.priority)
    audience = {key: list(value) for key, value in (("segments", form.segments), ("regions", form.regions),
                                                     ("carriers", form.carriers)) if value}
    if form.limit:
        audience["limit"] = int(form.limit)
    if form.not_contacted_within_hours:
        audience["not_contacted_within_hours"] = float(form.not_contacted_within_hours)
    if audience:
        spec["audience"] = audience
    if form.schedule == "at":
        if form.at_date is None or form.at_time is None:
            spec["schedule"] = "at"          # the loader names what is missing
        else:
            spec["schedule"] = datetime.combine(form.at_date, form.at_time, tzinfo=timezone.utc).isoformat()
    else:
        spec["schedule"] = form.schedule
    if form.link_url.strip():
        spec["links"] = {LINK: form.link_url.strip()}
    first = _templates(form, form.sms, form.subject, form.email)
    if form.experiment:
        spec["templates"] = {"a": first, "b": _templates(form, form.sms_b, form.subject_b, form.email_b)}
        share = min(max(float(form.share_b), 0.0), 1.0)
        spec["experiment"] = {
            "id": form.experiment_id.strip() or f"exp_{form.campaign_id.strip()}",
            "name": f"{spec['name']}: wording A or B",
            "variants": [{"name": "a", "weight": round(1 - share, 6), "control": True},
                         {"name": "b", "weight": round(share, 6)}],
            "holdout": float(form.holdout), "goal_metrics": [form.goal_metric]}
        if form.hypothesis.strip():
            spec["experiment"]["hypothesis"] = form.hypothesis.strip()
    else:
        spec["templates"] = first
    return {"campaign": spec}
