import pytest

from shop.catalog.service import stock_status
from shop.core.errors import InvalidInput
from shop.core.pagination import decode_cursor, encode_cursor


@pytest.mark.parametrize(
    ("stock", "status"), [(0, "sold_out"), (1, "low_stock"), (10, "low_stock"), (11, "in_stock"), (5000, "in_stock")]
)
def test_members_see_a_stock_status_not_the_stock(stock, status):
    assert stock_status(stock) == status


def test_a_cursor_round_trips():
    assert decode_cursor(encode_cursor([1990, 42]), 2) == [1990, 42]


@pytest.mark.parametrize("cursor", ["!!!", "e30", encode_cursor([1, 2, 3]), encode_cursor(["a", 1])])
def test_a_forged_cursor_is_refused_with_the_field_named(cursor):
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor, 2)
    assert caught.value.details == {"fields": {"cursor": ["not a cursor this API gave out"]}}
