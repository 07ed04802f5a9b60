"""The body budget: what one process may hold of request bodies at once."""

from __future__ import annotations

import pytest

from service.errors import Overloaded
from service.receiver.body import Budget


def test_requests_fit_up_to_the_limit_and_no_further() -> None:
    budget = Budget(100)
    with budget.reserve(60), budget.reserve(40):
        assert budget.in_use == 100
        with pytest.raises(Overloaded), budget.reserve(1):
            pass
    assert budget.in_use == 0


def test_a_reservation_is_given_back_whatever_ends_the_request() -> None:
    budget = Budget(100)
    with pytest.raises(ValueError), budget.reserve(70):
        raise ValueError("the signature did not match")
    assert budget.in_use == 0
    with budget.reserve(100):  # all of it again
        assert budget.in_use == 100


def test_a_refused_reservation_takes_nothing() -> None:
    budget = Budget(100)
    with budget.reserve(90):
        with pytest.raises(Overloaded), budget.reserve(20):
            pass
        assert budget.in_use == 90
