import pytest

from shop.core.money import allocate, apply_rate


@pytest.mark.parametrize(
    ("amount", "rate_bp", "expected"),
    [
        (10000, 1000, 1000),  # 10% of 100 yuan
        (999, 1000, 99),  # 99.9 fen rounds down
        (1, 9999, 0),
        (12345, 250, 308),  # 308.625 -> 308
        (0, 5000, 0),
        (100, 10000, 100),
        (7, 0, 0),
    ],
)
def test_apply_rate_rounds_down_to_the_fen(amount, rate_bp, expected):
    assert apply_rate(amount, rate_bp) == expected


def test_apply_rate_refuses_negative_inputs():
    with pytest.raises(ValueError):
        apply_rate(-1, 100)
    with pytest.raises(ValueError):
        apply_rate(100, -1)


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (1000, [3000, 2000, 5000], [300, 200, 500]),
        (1, [1, 1], [1, 0]),
        (10, [0, 0], [5, 5]),
        (0, [5, 7], [0, 0]),
        (500, [1999, 1], [500, 0]),
        (7, [2, 2, 3], [2, 2, 3]),
        (100, [1], [100]),
    ],
)
def test_allocate_spreads_an_amount_and_the_parts_add_up(amount, weights, expected):
    parts = allocate(amount, weights)
    assert parts == expected
    assert sum(parts) == amount


def test_allocate_always_adds_up_over_many_shapes():
    for amount in (0, 1, 99, 1000, 123457):
        for weights in ([1], [1, 2], [3, 3, 3], [10, 1, 0, 7], [9999, 1, 1]):
            assert sum(allocate(amount, weights)) == amount


def test_allocate_refuses_what_cannot_be_split():
    with pytest.raises(ValueError):
        allocate(5, [])
    with pytest.raises(ValueError):
        allocate(-5, [1])
    with pytest.raises(ValueError):
        allocate(5, [1, -1])
    assert allocate(0, []) == []


def test_cumulative_share_adds_up_to_the_amount_whatever_the_steps():
    from shop.core.money import cumulative_share

    for amount, units, steps in [(1000, 3, [1, 1, 1]), (1000, 3, [2, 1]), (1, 7, [3, 4]), (999, 10, [1] * 10)]:
        done_units = done_amount = 0
        parts = []
        for step in steps:
            part = cumulative_share(amount, units, done_units, done_amount, step)
            parts.append(part)
            done_units += step
            done_amount += part
        assert sum(parts) == amount
        assert all(part >= 0 for part in parts)
    assert cumulative_share(1000, 3, 0, 0, 1) == 333
    assert cumulative_share(1000, 3, 1, 333, 1) == 333
    assert cumulative_share(1000, 3, 2, 666, 1) == 334


def test_cumulative_share_refuses_more_units_than_there_are():
    import pytest

    from shop.core.money import cumulative_share

    with pytest.raises(ValueError):
        cumulative_share(1000, 3, 2, 666, 2)
    with pytest.raises(ValueError):
        cumulative_share(1000, 0, 0, 0, 0)
