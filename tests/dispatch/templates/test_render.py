"""Rendering in the sandbox: a missing variable is an error naming it and the user, never a blank."""

import pytest

from dispatch.campaign import Template
from dispatch.templates.render import CompiledTemplate, RenderError


def render(body, variables, user="u1", **fields):
    return CompiledTemplate(Template("t.main.default.sms", "sms", body, **fields)).render(variables, user)


def test_variables_fill_the_message():
    assert render("Hi {{ first_name }}, {{ amount_due | money('EUR') }} is due {{ due_date | date('%d %b') }}",
                  {"first_name": "Ana", "amount_due": "42.5", "due_date": "2026-12-05"}).body == \
        "Hi Ana, €42.50 is due 05 Dec"


def test_an_undefined_variable_names_itself_and_the_user():
    with pytest.raises(RenderError) as caught:
        render("Your order {{ order_number }} shipped", {"first_name": "Ana"}, user="u0042")
    assert caught.value.variable == "order_number"
    assert "order_number" in str(caught.value) and "u0042" in str(caught.value)


@pytest.mark.parametrize("value", [None, ""])
def test_an_empty_value_is_missing_not_a_blank(value):
    with pytest.raises(RenderError) as caught:
        render("Hi {{ first_name }}!", {"first_name": value})
    assert caught.value.variable == "first_name"


def test_a_missing_attribute_is_named():
    with pytest.raises(RenderError) as caught:
        render("{{ campaign.brand }}", {"campaign": {"id": "c"}})
    assert caught.value.variable == "brand"


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(RenderError) as caught:
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    assert "sandbox" in str(caught.value) or "undefined" in str(caught.value)


def test_the_sandbox_is_immutable():
    with pytest.raises(RenderError):
        render("{% set _ = items.append(3) %}{{ items }}", {"items": [1, 2]})


def test_html_is_escaped_but_text_is_not():
    compiled = CompiledTemplate(Template("t", "email", "Hi {{ name }}", subject="{{ name }}",
                                         html="<p>Hi {{ name }}</p>"))
    out = compiled.render({"name": "<Ana & Bo>"}, "u1")
    assert out.body == "Hi <Ana & Bo>" and out.subject == "<Ana & Bo>"
    assert out.html == "<p>Hi &lt;Ana &amp; Bo&gt;</p>"


def test_a_template_that_renders_to_nothing_is_refused():
    with pytest.raises(RenderError, match="renders to nothing"):
        render("{% if vip %}VIP offer{% endif %}", {"vip": False})


def test_a_bad_money_value_is_an_error_for_that_user():
    with pytest.raises(RenderError, match="not an amount") as caught:
        render("{{ amount | money('USD') }}", {"amount": "forty"}, user="u7")
    assert "u7" in str(caught.value)
