"""insert_as_loaded: new rows inserted with one statement and attached as if loaded: what the
database filled in (ids, defaults) is on the objects, nothing is left for a flush, and reading
them sends no SQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from shop.catalog.models import Category
from shop.core.db import db, insert_as_loaded, new_row, transaction
from tests.factories import make_merchant, sent_statements

ROOT = Path(__file__).resolve().parents[3]


def test_rows_are_inserted_once_and_read_back_without_sql(ctx):
    merchant = make_merchant()
    with sent_statements() as statements, transaction():
        fruit = [Category(merchant_id=merchant.id, name=name) for name in ("苹果", "梨")]
        insert_as_loaded(fruit)
        inserted = len(statements)
        ids = [category.id for category in fruit]  # filled in by the database, read without SQL
        created = [category.created_at for category in fruit]
        sort_orders = [category.sort_order for category in fruit]  # a column default
        db.session.flush()  # nothing pending: no second INSERT
        assert inserted == 1 and len(statements) == inserted  # one statement for both rows
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 2
    assert all(c is not None for c in created) and sort_orders == [0, 0]
    stored = db.session.execute(select(Category.name).where(Category.id.in_(ids)).order_by(Category.id)).scalars()
    assert list(stored) == ["苹果", "梨"]


def test_nothing_to_insert_sends_nothing(ctx):
    with transaction():
        insert_as_loaded([])


def test_one_row_goes_the_direct_way_with_its_python_defaults_and_reads_back_only_the_id(ctx):
    merchant = make_merchant()
    with sent_statements() as statements, transaction():
        tea = Category(merchant_id=merchant.id, name="茶")
        insert_as_loaded([tea])
        assert db.inspect(tea).persistent and not db.session.dirty and not db.session.new
        # a constant default and a function default (utcnow) were sent with the row; the id
        # (a sequence) is the one thing read back
        assert (tea.sort_order, tea.parent_id) == (0, None) and tea.created_at is not None
        assert len(statements) == 1 and statements[0].endswith("RETURNING categories.id")
        db.session.flush()
        assert len(statements) == 1
    stored = db.session.execute(select(Category).where(Category.id == tea.id)).scalar_one()
    assert (stored.name, stored.sort_order, stored.created_at) == ("茶", 0, tea.created_at)


def test_a_parent_and_its_children_go_in_one_statement_and_each_row_gets_its_own_id(ctx):
    merchant = make_merchant()
    with transaction():
        parent_id = db.session.execute(select(func.nextval(func.pg_get_serial_sequence("categories", "id")))).scalar()
        parent = Category(id=parent_id, merchant_id=merchant.id, name="水果")
        children = [Category(merchant_id=merchant.id, parent_id=parent_id, name=name) for name in ("苹果", "梨", "桃")]
        with sent_statements() as statements:
            insert_as_loaded([parent], children)  # the children's foreign key names a row of the same statement
    assert len(statements) == 1 and statements[0].startswith("WITH")
    stored = dict(db.session.execute(select(Category.id, Category.name).where(Category.parent_id == parent_id)).all())
    assert stored == {child.id: child.name for child in children}  # each object got its own row's id
    assert db.session.get(Category, parent_id).name == "水果"


def test_new_row_makes_an_instance_without_history_that_insert_as_loaded_inserts(ctx):
    merchant = make_merchant()
    tea = new_row(Category, merchant_id=merchant.id, name="茶")
    assert (tea.name, tea.merchant_id, tea.parent_id) == ("茶", merchant.id, None)  # read as given
    assert db.inspect(tea).transient and not db.inspect(tea).modified  # no change recorded
    with transaction():
        insert_as_loaded([tea])
    assert db.inspect(tea).persistent and tea.sort_order == 0 and tea.id is not None
    assert db.session.execute(select(Category.name).where(Category.id == tea.id)).scalar_one() == "茶"


def test_new_row_works_as_the_first_use_of_the_orm_in_a_fresh_process():
    # A gunicorn worker's first placement: no constructor or query has configured the mappers yet.
    script = (
        "from shop.core.db import new_row\n"
        "from shop.orders.models import Order\n"
        "order = new_row(Order, id=1, status='pending_payment')\n"
        "print(order.status, order.remark)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "pending_payment None"), done.stderr
