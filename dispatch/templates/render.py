"""Rendering a message from its template for one user, in Jinja2's sandbox.

The environment is sandboxed (a template cannot reach Python internals or change its inputs) and
strict: a variable that is missing — or present but empty, which would print as a blank or
"None" — is an error naming the variable, the template and the user, never a blank in a sent
message. HTML e-mail bodies are autoescaped; text bodies are not.

Variables, later sources winning: the campaign's ``variables``, the user's row of ``dim_users``
(segment, region, country, timezone, best_send_hour, ...), the contact's attributes from the
contacts import (first_name, ...), the user's row of the audience's ``users_file`` (order_number,
amount_due, due_date, ...). Always present: ``campaign`` (id, name), ``user_id``, ``message_id``,
``variant``, ``channel``, ``quick_replies_text``, and ``link('name')`` (a tracked short link).
Filters: ``money`` (``{{ amount_due | money('EUR') }}`` → ``€42.50``) and ``date``
(``{{ due_date | date('%d %b') }}`` → ``05 Dec``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dispatch.campaign import Template

CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}
_UNDEFINED = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")
FIELDS = ("body", "subject", "html", "title", "fallback")


class RenderError(ValueError):
    """A message that cannot be rendered for a user; ``variable`` names what was missing."""

    def __init__(self, message: str, template_id: str, user_id: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.template_id, self.user_id, self.variable = template_id, user_id, variable


def _money(value: Any, currency: str = "") -> str:
    try:
        amount = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"money: {value!r} is not an amount") from exc
    code = str(currency).upper()
    sign = CURRENCY_SIGNS.get(code)
    text = f"{amount:,.0f}" if code == "JPY" else f"{amount:,.2f}"
    return f"{sign}{text}" if sign else (f"{text} {code}" if code else text)


def _date(value: Any, fmt: str = "%d %b %Y") -> str:
    if isinstance(value, (date, datetime)):
        return value.strftime(fmt)
    try:
        return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")).strftime(fmt)
    except ValueError as exc:
        raise ValueError(f"date: {value!r} is not an ISO date") from exc


@lru_cache(maxsize=2)
def environment(html: bool) -> ImmutableSandboxedEnvironment:
    """The sandbox every template is compiled in (``html``: autoescaped, for e-mail HTML)."""
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=html,
                                        keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = _money
    env.filters["date"] = _date
    return env


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    fallback: str | None = None


class CompiledTemplate:
    """A template's fields compiled once, rendered per user."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self._compiled: dict[str, jinja2.Template] = {}
        for name in FIELDS:
            text = getattr(template, name)
            if text:
                self._compiled[name] = environment(html=name == "html").from_string(text)

    def render(self, variables: Mapping[str, Any], user_id: str, link: Callable[[str], str] | None = None) -> Rendered:
        """The message for one user; ``RenderError`` names a missing variable."""
        context = {k: v for k, v in variables.items() if v is not None and v != ""}
        if link is not None:
            context["link"] = link
        out: dict[str, str] = {}
        for name, compiled in self._compiled.items():
            try:
                text = compiled.render(context)
            except jinja2.UndefinedError as exc:
                match = _UNDEFINED.search(str(exc))
                variable = (match.group(1) or match.group(2)) if match else None
                what = f"{{{{ {variable} }}}} is undefined" if variable else str(exc)
                raise RenderError(f"template {self.template.template_id} ({name}): {what} for user {user_id}",
                                  self.template.template_id, user_id, variable) from exc
            except jinja2.exceptions.SecurityError as exc:
                raise RenderError(f"template {self.template.template_id} ({name}): not allowed in the sandbox: {exc}",
                                  self.template.template_id, user_id) from exc
            except (ValueError, TypeError, ArithmeticError, jinja2.TemplateError) as exc:
                raise RenderError(f"template {self.template.template_id} ({name}): {exc} for user {user_id}",
                                  self.template.template_id, user_id) from exc
            if name != "html":
                text = text.strip()
            if not text:
                raise RenderError(f"template {self.template.template_id} ({name}): renders to nothing for user {user_id}",
                                  self.template.template_id, user_id)
            out[name] = text
        return Rendered(out["body"], out.get("subject"), out.get("html"), out.get("title"), out.get("fallback"))
