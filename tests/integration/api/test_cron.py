"""Cron enqueues a sweep again only when its last run is neither waiting nor really running: a run
left `started` by a worker round that a Redis outage ended must not stop the sweep for minutes."""

from __future__ import annotations

from rq import Worker
from rq.executions import prepare_execution
from rq.job import Job

from api.cron import Cron
from shop.core.cache import redis_client
from tests.harness_jobs import rename_merchant


def _cron(app) -> Cron:
    return Cron(redis_client(), app.config["SETTINGS"].queue_name, retry_max=1)


def _start(cron: Cron, job: Job, worker: Worker) -> None:
    """What a worker writes when it takes the job: its execution, and the job started by it."""
    prepare_execution(worker, job)
    with cron.queue.connection.pipeline() as pipeline:
        job.prepare_for_execution(worker.name, pipeline)
        pipeline.execute()


def test_a_queued_run_is_still_waiting(app, ctx):
    cron = _cron(app)
    job = cron.queue.enqueue(rename_merchant, 0, "x")
    assert cron._still_waiting(job.id)
    job.delete()
    assert not cron._still_waiting(job.id)


def test_a_run_its_live_worker_is_working_is_still_running_and_not_once_that_worker_is_gone(app, ctx):
    cron = _cron(app)
    job = cron.queue.enqueue(rename_merchant, 0, "x")
    worker = Worker([cron.queue], connection=cron.queue.connection, name="cron-test-worker")
    worker.register_birth()
    try:
        _start(cron, job, worker)
        assert cron._still_waiting(job.id)
        # A round ended by an outage: the next round tells Redis the old worker is dead, and the
        # job it could not finish still reads `started`.
        worker.register_death()
        assert Job.fetch(job.id, connection=cron.queue.connection).get_status() == "started"
        assert not cron._still_waiting(job.id)
    finally:
        worker.register_death()


def test_a_run_its_worker_no_longer_names_is_not_running(app, ctx):
    cron = _cron(app)
    stale = cron.queue.enqueue(rename_merchant, 0, "stale")
    current = cron.queue.enqueue(rename_merchant, 0, "current")
    worker = Worker([cron.queue], connection=cron.queue.connection, name="cron-test-worker-2")
    worker.register_birth()
    try:
        with cron.queue.connection.pipeline() as pipeline:  # started by it, then its record lost
            stale.prepare_for_execution(worker.name, pipeline)
            pipeline.execute()
        _start(cron, current, worker)
        assert (cron._still_waiting(stale.id), cron._still_waiting(current.id)) == (False, True)
    finally:
        worker.register_death()


def test_run_due_enqueues_a_sweep_again_once_its_started_run_is_abandoned(app, ctx):
    cron = _cron(app)
    sweep = cron.sweeps[0]
    cron.run_due()
    first = sweep.last_job_id
    job = Job.fetch(first, connection=cron.queue.connection)
    worker = Worker([cron.queue], connection=cron.queue.connection, name="cron-test-worker-3")
    worker.register_birth()
    try:
        _start(cron, job, worker)
        sweep.due = 0
        cron.run_due()
        assert sweep.last_job_id == first  # running: not enqueued again
        worker.register_death()
        sweep.due = 0
        cron.run_due()
        assert sweep.last_job_id != first
    finally:
        worker.register_death()
