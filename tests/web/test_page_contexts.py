"""Each template is held to its typed context (ledgerdesk.web.pages): every name it reads
is a field of its context, of the frame every page gets, or a global; every field of the
context is read. A page that builds a context mypy checks the fields; this checks the
other side, the template, without rendering it."""

from __future__ import annotations

from dataclasses import fields

import pytest
from jinja2 import Environment, meta, nodes

from ledgerdesk.web import pages
from ledgerdesk.web.core import template_environment

# Not pages: the layout every page extends, and the macros they import.
LAYOUT = {"base.html", "_macros.html"}


def contexts() -> list[type[pages.Context]]:
    found: list[type[pages.Context]] = []
    queue = list(pages.Context.__subclasses__())
    while queue:
        cls = queue.pop()
        found.append(cls)
        queue.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.template)


def source(env: Environment, name: str) -> str:
    assert env.loader is not None
    return env.loader.get_source(env, name)[0]


def reads(env: Environment, source: str) -> set[str]:
    """The names a template reads that it does not define itself (a ``set``, an import,
    a loop variable or a macro of its own)."""
    tree = env.parse(source)
    undeclared = meta.find_undeclared_variables(tree)
    defined = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for imported in tree.find_all(nodes.FromImport):
        defined.update(n if isinstance(n, str) else n[1] for n in imported.names)
    defined.update(m.name for m in tree.find_all(nodes.Macro))
    return undeclared - defined


def frame_names(env: Environment) -> set[str]:
    return {f.name for f in fields(pages.Frame)} | set(env.globals)


def test_every_value_of_the_frame_is_read() -> None:
    env = template_environment()
    read: set[str] = set()
    for name in env.list_templates():
        read |= reads(env, source(env, name))
    assert {f.name for f in fields(pages.Frame)} - read == set()


def test_every_page_template_has_one_context() -> None:
    env = template_environment()
    templates = {name for name in env.list_templates() if name not in LAYOUT}
    named = [cls.template for cls in contexts()]
    assert sorted(named) == sorted(set(named)), "two contexts name one template"
    assert set(named) == templates


@pytest.mark.parametrize("context", contexts(), ids=lambda cls: cls.__name__)
def test_template_reads_its_context(context: type[pages.Context]) -> None:
    env = template_environment()
    declared = {f.name for f in fields(context)}
    read = reads(env, source(env, context.template))
    assert read - declared - frame_names(env) == set(), "read, but not in the context"
    assert declared - read == set(), "in the context, but never read"


def test_the_check_sees_what_a_template_reads() -> None:
    env = template_environment()
    template = (
        '{% extends "base.html" %}{% from "_macros.html" import field %}{% set shown = 1 %}'
        "{% block main %}{{ shown }}{{ missing.title }}{{ field('a', 'A', {}) }}"
        "{% for row in rows %}{{ row }}{% endfor %}{% endblock %}"
    )
    assert reads(env, template) == {"missing", "rows"}
