"""The core room: what every other room stands on (database, errors, money, events, the job
runner, cache, Redis guard, rate limits, integrity translation, the lock order, paging).
It imports no other room."""
