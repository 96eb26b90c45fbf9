"""Staff choose which mail they get with the CLI; customers have no such choice (they
hear of their own tickets)."""

from __future__ import annotations

from typing import Any

from tests.cli.test_admin import ok_json, one_line_error


def test_the_cli_sets_a_staff_members_choice_only(run: Any) -> None:
    staff = ok_json(run("admin", "user", "create", "--name", "Sam", "--staff", "--json"))["userId"]
    customer = ok_json(run("admin", "user", "create", "--name", "Ann", "--json"))["userId"]
    changed = ok_json(run("admin", "user", "update", str(staff), "--mail-notify", "own", "--json"))
    assert changed["mailNotify"] == "own"
    refused = run("admin", "user", "update", str(customer), "--mail-notify", "none")
    assert "mail-notify: is for staff" in one_line_error(refused)
