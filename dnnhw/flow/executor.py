"""Running jobs: from the store when their key is there, else on local cores or on a Dask
cluster, with a live progress display.

Local runs use a thread pool whose threads each drive one job process
(:func:`dnnhw.flow.jobs.execute`), as many as :func:`default_workers` allows: the cores,
bounded by memory. ``scheduler=ADDRESS`` sends the same jobs to a ``dask.distributed``
scheduler; its workers need dnnhw installed, and their records come back to this
process, which alone writes the store.

A ``sim`` or ``synth`` job's key needs the digest of its core's RTL, so each distinct
design is first digested by a ``design`` job (itself cached on the design's sources);
its dependent jobs are keyed, looked up and submitted as soon as it ends.

Jobs start largest first (:func:`job_cost`: builds before simulations, by the size of
their RTL), so that a long place-and-route does not start last and leave the other
workers idle at the end: through Dask's own ``priority``, and locally by handing the
thread pool a job only when a worker is free.
"""

import heapq
import itertools
import math
import os
import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from .jobs import Job, execute, stop_all
from .store import ResultStore


__all__ = ["JOB_MEMORY_GB", "Interrupted", "default_workers", "job_cost", "run_jobs",
           "Progress"]

#: Memory one job may take. Measured: the largest ECP5 place-and-route of the main job
#: peaks near 3 GB; the bound leaves room for two of them on a 24 GB machine with 2 cores.
JOB_MEMORY_GB = 5


def default_workers():
    """As many jobs at once as the machine has cores, and no more than its memory holds
    at :data:`JOB_MEMORY_GB` each."""
    cores = os.cpu_count() or 1
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return cores
    return max(1, min(cores, int(memory_gb // JOB_MEMORY_GB)))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during :func:`run_jobs`. ``records`` holds, in job order, the
    record of every job that finished before it (``None`` for the others)."""

    def __init__(self, records):
        super().__init__("interrupted")
        self.records = records


def job_cost(job, rtlil_bytes=0):
    """A guess of a job's run time, only to order jobs: design digests first (the others
    wait for them), then builds (the ECP5's larger device costs most), then simulations,
    each by the size of its RTL."""
    weight = {"design": 1e12, "synth": 3.0 if (job.target or "").startswith("ecp5") else 2.0,
              "sim": 1.0, "analysis": 1.0}[job.kind]
    return weight * (1 + rtlil_bytes)


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """Jobs done, running and queued, each finished job with its time, and an ETA.

    On a terminal a tqdm bar; elsewhere (CI, a log file) plain lines; nothing when
    ``quiet``. Jobs found in the store are counted but not listed one by one.
    """

    def __init__(self, total, *, workers, quiet=False, stream=None):
        self.total, self.workers, self.quiet = total, workers, quiet
        self.stream = stream or sys.stderr
        self.done = self.cached = 0
        self.busy_seconds = []
        self.started = time.monotonic()
        self.bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="job", file=self.stream, dynamic_ncols=True)

    def _write(self, line):
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def eta(self, remaining):
        """Seconds still to go: the mean time of the jobs run so far, spread over the
        workers; ``None`` before any job has run."""
        if not self.busy_seconds:
            return None
        mean = sum(self.busy_seconds) / len(self.busy_seconds)
        return mean * math.ceil(remaining / self.workers)

    def finished(self, record, *, cached, running, queued):
        self.done += 1
        elapsed = time.monotonic() - self.started
        if cached:
            self.cached += 1
        else:
            self.busy_seconds.append(record.get("seconds") or 0.0)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"running {running}, queued {queued}")
        if cached:
            return
        eta = self.eta(running + queued)
        status = record["status"] if record["status"] == "ok" else record["status"].upper()
        self._write(f"[{self.done}/{self.total}] {status} {record['label']} "
                    f"({record.get('seconds', 0):.0f} s) | running {running}, queued {queued}"
                    f" | {_clock(elapsed)} elapsed" + (f", ETA {_clock(eta)}" if eta else ""))

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.cached:
            self._write(f"{self.cached} of {self.total} jobs came from the store")


class _Pool:
    """Local threads or a Dask client, behind one ``submit`` that calls ``done(future)``
    when a job ends."""

    def __init__(self, workers, scheduler):
        self.client = self.threads = None
        if scheduler is not None:
            from distributed import Client
            self.client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
            self.own_client = not isinstance(scheduler, Client)
            self.workers = max(1, sum(w.get("nthreads", 1) for w in
                                      self.client.scheduler_info()["workers"].values()))
        else:
            self.threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dnnhw-job")
            self.workers = workers

    def submit(self, spec, timeout, done, priority=0):
        if self.client is not None:
            future = self.client.submit(execute, spec, timeout, pure=False, priority=priority,
                                        key=f"dnnhw-{spec['key'][:24]}-{time.monotonic_ns()}")
        else:
            future = self.threads.submit(execute, spec, timeout)
        future.add_done_callback(done)
        return future

    def close(self, cancel=False):
        if self.client is not None:
            if self.own_client:
                self.client.close()
        else:
            self.threads.shutdown(wait=not cancel, cancel_futures=cancel)


def run_jobs(jobs, *, catalog, catalog_ref, build_root, workers=None, scheduler=None,
             timeout=None, force=False, quiet=False, pythonpath=(), run=True):
    """Run ``jobs`` (a list of :class:`~dnnhw.flow.jobs.Job`); return their records, in
    order, each with ``cached`` set.

    ``catalog`` is the list of rows the jobs' cores come from and ``catalog_ref`` its
    ``"module:attribute"`` for the job processes; ``force`` ignores the store (and
    overwrites it); ``timeout`` is per job, in seconds; ``run=False`` runs nothing and
    gives each job the store does not hold the status ``not run``. On Ctrl-C every job process is
    killed and :class:`Interrupted` (a ``KeyboardInterrupt``) carries the records finished
    so far; the store keeps every one of them.
    """
    from .tasks import design_key   # noqa: F401  (imported here: fail before any thread)
    rows = {c.name: c for c in catalog}
    build_root = os.path.abspath(build_root)
    store = ResultStore(os.path.join(build_root, "store"))
    workers = workers or default_workers()
    pythonpath = list(pythonpath) or [p for p in sys.path if p]

    records = [None] * len(jobs)
    designs = {}           # (core, params) -> design Job
    waiting = {}           # design Job -> indices of the jobs that need its digest
    for index, job in enumerate(jobs):
        if job.kind in ("sim", "synth"):
            design = designs.setdefault((job.core, job.params),
                                        Job("design", job.core, job.params))
            waiting.setdefault(design, []).append(index)

    pool = None
    events = queue.Queue()
    pending = {}           # future -> (item, job, key)
    ready = []             # heap of (-cost, order, item, job, key): keyed, not yet submitted
    order = itertools.count()
    progress = Progress(len(jobs) + len(designs), workers=workers, quiet=quiet)

    def spec(job, key):
        return {"job": job.to_dict(), "key": key, "label": job.label, "catalog": catalog_ref,
                "build_root": build_root, "pythonpath": pythonpath}

    def counts():
        running = min(len(pending), pool.workers if pool else workers)
        return running, len(pending) - running + len(ready) + sum(len(v) for v in waiting.values())

    def finish(item, record, cached):
        record["cached"] = cached
        if isinstance(item, int):
            records[item] = record
        running, queued = counts()
        progress.finished(record, cached=cached, running=running, queued=queued)

    def start(item, job, key, cost):
        """Finish ``item`` from the store, or queue ``job`` to run."""
        nonlocal pool
        stored = None if force else store.get(key)
        if stored is not None:
            finish(item, stored, cached=True)
            return stored
        if not run:
            finish(item, {"key": key, "label": job.label, "job": job.to_dict(),
                          "status": "not run", "error": "not in the store (--no-run)"},
                   cached=False)
            return None
        if pool is None:
            pool = _Pool(workers, scheduler)
        heapq.heappush(ready, (-cost, next(order), item, job, key))
        return None

    def pump():
        """Submit ready jobs, largest first: all of them to Dask, which orders them by
        priority; to the local threads only as many as there are workers."""
        while ready and (pool.client is not None or len(pending) < pool.workers):
            cost, _, item, job, key = heapq.heappop(ready)
            # Another run sharing the store may have finished it since it was keyed.
            stored = None if force else store.get(key)
            if stored is not None:
                finish(item, stored, cached=True)
                if job.kind == "design":
                    design_done(job, stored)
                continue
            future = pool.submit(spec(job, key), timeout, events.put, priority=-cost)
            pending[future] = (item, job, key)

    def design_done(design, record):
        indices = waiting.pop(design)
        for index in indices:
            job = jobs[index]
            if record["status"] == "not run":
                finish(index, {**record, "label": job.label, "job": job.to_dict()}, cached=False)
                continue
            if record["status"] != "ok":
                finish(index, {"key": None, "label": job.label, "job": job.to_dict(),
                               "status": "error", "log": record.get("log"),
                               "error": f"its design did not elaborate: {record.get('error')}"},
                       cached=False)
                continue
            key = job.key(rows[job.core], record["result"]["rtl_sha256"])
            start(index, job, key, job_cost(job, record["result"].get("rtlil_bytes", 0)))

    try:
        for design in list(waiting):
            stored = start(design, design, design.key(rows[design.core]), job_cost(design))
            if stored is not None or not run:
                design_done(design, stored or {"status": "not run",
                                               "error": "its design is not in the store"})
        for index, job in enumerate(jobs):
            if job.kind == "analysis":
                start(index, job, job.key(rows[job.core]), job_cost(job))
        if pool is not None:
            pump()
        while pending:
            future = events.get()
            item, job, key = pending.pop(future)
            try:
                record = future.result()
            except Exception as error:   # the executor itself failed (a lost Dask worker)
                record = {"key": key, "label": job.label, "job": job.to_dict(),
                          "status": "error", "error": f"{type(error).__name__}: {error}"}
            if record["status"] == "ok":
                store.put(key, record)
            if job.kind == "design":
                design_done(job, record)
            pump()   # before the progress line, so that its counts include the next jobs
            finish(item, record, cached=False)
    except KeyboardInterrupt:
        for future in pending:
            future.cancel()
        if pool is not None and pool.client is not None:
            pool.client.cancel(list(pending))
        stop_all()
        if pool is not None:
            pool.close(cancel=True)
        pool = None
        raise Interrupted(records) from None
    finally:
        if pool is not None:
            pool.close()
        progress.close()
    return records
