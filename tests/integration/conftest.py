import pytest


@pytest.fixture(autouse=True)
def _database(database):
    """Every integration test gets the rolled-back (or truncated) database and a flushed Redis."""
