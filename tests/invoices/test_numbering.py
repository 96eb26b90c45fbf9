"""Invoice numbers: unique and gapless per year, also under concurrent creation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest

from ledgerdesk.config import Settings
from ledgerdesk.db.models import User
from ledgerdesk.invoices.pricing import LineInput
from ledgerdesk.invoices.service import InvoiceService
from ledgerdesk.runtime import Runtime
from tests.factories import (
    credit_invoice,
    make_invoice,
    make_user,
    prepare_invoicing,
    system_work,
)


def test_numbers_count_up_per_year(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    numbers = [
        make_invoice(runtime, user_id, created_on=day).number
        for day in (date(2026, 1, 5), date(2026, 3, 1), date(2025, 12, 31), date(2026, 12, 31))
    ]
    assert numbers == ["F26-0000001", "F26-0000002", "F25-0000001", "F26-0000003"]


def test_credit_notes_have_a_gapless_series_of_their_own(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    first = make_invoice(runtime, user_id, created_on=date(2026, 2, 1))
    second = make_invoice(runtime, user_id, created_on=date(2026, 2, 2))
    notes = [
        credit_invoice(runtime, first.id, created_on=date(2026, 2, 3)).number,
        credit_invoice(runtime, second.id, created_on=date(2026, 2, 4)).number,
    ]
    assert notes == ["C26-0000001", "C26-0000002"]
    assert make_invoice(runtime, user_id, created_on=date(2026, 2, 5)).number == "F26-0000003"


def test_a_failed_creation_gives_its_number_back(runtime: Runtime) -> None:
    user_id = make_user(runtime)
    make_invoice(runtime, user_id, created_on=date(2026, 5, 1))

    def create_then_fail() -> None:
        with system_work(runtime) as work:
            customer = work.session.get(User, user_id)
            assert customer is not None
            created = InvoiceService(work).issue(
                customer=customer,
                lines=[LineInput("doomed", Decimal(1), Decimal(1), 0)],
                created_on=date(2026, 5, 2),
                pay_within_days=30,
            )
            assert created.number == "F26-0000002"
            raise RuntimeError("the transaction fails after the number was taken")

    with pytest.raises(RuntimeError, match="after the number"):
        create_then_fail()
    assert make_invoice(runtime, user_id, created_on=date(2026, 5, 3)).number == "F26-0000002"


def test_concurrent_creation_from_several_processes_is_gapless(settings: Settings) -> None:
    # Separate runtimes have separate engines and pools, as separate server processes do.
    runtimes = [Runtime.build(settings) for _ in range(3)]
    try:
        user_id = make_user(runtimes[0])
        prepare_invoicing(runtimes[0], user_id)
        per_runtime = 10
        barrier = threading.Barrier(len(runtimes) * per_runtime)

        def create(runtime: Runtime) -> str:
            barrier.wait(timeout=30)
            return make_invoice(runtime, user_id, created_on=date(2026, 6, 1)).number

        with ThreadPoolExecutor(max_workers=len(runtimes) * per_runtime) as pool:
            futures = [pool.submit(create, r) for r in runtimes for _ in range(per_runtime)]
            numbers = sorted(f.result(timeout=120) for f in futures)
        total = len(runtimes) * per_runtime
        assert numbers == [f"F26-{n:07d}" for n in range(1, total + 1)]
    finally:
        for runtime in runtimes:
            runtime.engine.dispose()
