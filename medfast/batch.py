"""Batch conversion: many DICOM inputs, one task each, run in parallel
worker processes or on a Dask cluster, resumable, with a report.

A :class:`Task` is one input converted by :func:`medfast.convert`;
:func:`run_task` runs it and never raises (its :class:`TaskResult` says what
happened).  The same function runs in the local process pool and on Dask
workers, so both give the same files and the same report.  Resuming and
concurrent runs rely on :func:`medfast.convert`'s claims on output names:
a complete output already there is kept, never written twice.
"""
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
import glob
import json
import multiprocessing
import os
import time

__all__ = ["Task", "TaskResult", "BatchReport", "STATUSES", "expand_sources", "make_tasks",
           "run_task", "run_batch", "default_workers"]

#: What can become of one input: ``done`` (converted in this run, every image
#: used), ``skipped`` (already converted: its complete outputs were there,
#: nothing written), ``partial`` (converted, but files or volumes left out,
#: listed), ``failed`` (nothing converted: the reason says why).
STATUSES = ("done", "skipped", "partial", "failed")

# The tasks unfinished when a worker process dies run again in a new pool;
# a task unfinished at its second break is reported as failed.
_POOL_BREAKS_ALLOWED = 1


@dataclass(frozen=True)
class Task:
    """One input to convert, with :func:`medfast.convert`'s options.

    ``threads`` caps medfast's threads in the worker (the batch shares the
    cores among its workers).
    """

    src: str
    dst: str
    pattern: str = "%p_%s"
    compress: bool = True
    sidecar: bool = True
    anonymize: bool = True
    existing: str = "skip"
    annotations: bool = False
    suv: object = None  # None or 'bw'
    threads: object = None  # int or None


@dataclass
class TaskResult:
    """What one task did (all paths as strings; JSON-ready with
    :meth:`as_dict`)."""

    src: str
    dst: str
    status: str
    reason: str = ""
    written: list = field(default_factory=list)
    kept: list = field(default_factory=list)     # {'nifti', 'series'}
    skipped: list = field(default_factory=list)  # {'path', 'reason', 'kind'}
    failed: list = field(default_factory=list)   # {'series', 'reason'}
    volumes: list = field(default_factory=list)  # {'nifti', 'series', 'shape', 'problems'}
    seconds: float = 0.0

    def as_dict(self):
        """The result as a plain dict (for JSON)."""
        return asdict(self)


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def run_task(task, progress=None):
    """Convert one input; never raises.

    Parameters
    ----------
    task : Task
    progress : callable, optional
        Passed to :func:`medfast.convert` (files read, volumes done).

    Returns
    -------
    TaskResult
        ``status`` is one of :data:`STATUSES`; an exception (no DICOM
        volume found, a folder that cannot be written...) becomes
        ``'failed'`` with the exception's message as ``reason``.
    """
    from .dicom import convert
    from ._threads import set_num_threads

    start = time.perf_counter()
    try:
        if task.threads is not None:
            set_num_threads(task.threads)
        result = convert(task.src, task.dst, pattern=task.pattern, compress=task.compress,
                         sidecar=task.sidecar, anonymize=task.anonymize,
                         existing=task.existing, annotations=task.annotations,
                         suv=task.suv, progress=progress)
    except Exception as exc:  # one failing input must not stop the others
        return TaskResult(task.src, task.dst, "failed", _one_line(exc),
                          seconds=time.perf_counter() - start)
    skipped = [{"path": s.path, "reason": _one_line(s.reason), "kind": s.kind}
               for s in result.skipped]
    failed = [{"series": f.series, "reason": _one_line(f.reason)} for f in result.failed]
    if not result.ok:
        status = "partial"
        left = [s for s in skipped if s["kind"] != "duplicate"]
        reason = "; ".join(
            [f"{len(failed)} series not converted"] * bool(failed)
            + [f"{len(left)} file(s) left out"] * bool(left))
    else:
        status, reason = ("done", "") if result.outputs else ("skipped", "already converted")
    return TaskResult(task.src, task.dst, status, reason, written=result.files,
                      kept=[{"nifti": k.nifti, "series": k.series} for k in result.kept], skipped=skipped, failed=failed,
                      volumes=[{"nifti": o.nifti, "series": o.series, "shape": list(o.shape),
                                "problems": [_one_line(p) for p in o.problems]}
                               for o in result.outputs],
                      seconds=time.perf_counter() - start)


def expand_sources(arguments=(), from_list=None):
    """The inputs of a batch: paths and glob patterns, and the lines of a list file.

    Parameters
    ----------
    arguments : sequence of str
        Paths (folders or files) and glob patterns (``'data/sub-*'``,
        ``'**'`` for any depth).
    from_list : str, optional
        A text file with one input per line (blank lines and lines starting
        with ``#`` are ignored; relative paths are relative to the current
        folder).

    Returns
    -------
    sources : list of str
        Existing inputs, in the order given (a pattern's matches sorted),
        each once.
    missing : list of str
        Arguments that name nothing (a path that does not exist, a pattern
        matching nothing).

    Raises
    ------
    OSError
        If `from_list` cannot be read.
    """
    wanted = list(arguments)
    if from_list is not None:
        with open(from_list, encoding="utf-8") as f:
            wanted += [line.strip() for line in f
                       if line.strip() and not line.lstrip().startswith("#")]
    sources, missing, seen = [], [], set()
    for item in wanted:
        if glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
        else:
            matches = [item] if os.path.lexists(item) else []
        if not matches:
            missing.append(item)
        for path in matches:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                sources.append(path)
    return sources, missing


def _source_name(src):
    name = os.path.basename(os.path.normpath(os.path.abspath(src)))
    for ext in (".gz", ".dcm", ".ima"):
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    return name


def make_tasks(sources, dst, **options):
    """One :class:`Task` per input.

    Parameters
    ----------
    sources : sequence of str
        DICOM folders or files.
    dst : str
        Output folder.  One input writes into it directly; with several,
        each writes into ``dst/NAME``, NAME being the input's folder (or
        file) name, so that studies never share (or take over) each
        other's output names and a re-run finds its own.
    **options
        :class:`Task` fields: ``pattern``, ``compress``, ``sidecar``,
        ``anonymize``, ``existing``, ``annotations``, ``suv``, ``threads``.

    Returns
    -------
    list of Task

    Raises
    ------
    ValueError
        If two inputs have the same name (their outputs would share a
        folder); the message names both.
    """
    if len(sources) == 1:
        return [Task(os.fspath(sources[0]), os.fspath(dst), **options)]
    by_name = {}
    for src in sources:
        name = _source_name(src)
        if name in by_name:
            raise ValueError(f"{by_name[name]} and {src}: two inputs named {name!r} would "
                             "write into one output folder; convert them separately")
        by_name[name] = src
    return [Task(os.fspath(src), os.path.join(os.fspath(dst), name), **options)
            for name, src in by_name.items()]


def default_workers():
    """Worker processes by default: the cores this process may run on."""
    from ._threads import available_cores
    return available_cores()


class BatchReport(list):
    """The :class:`TaskResult` of every task, in the order of the tasks.

    Attributes
    ----------
    seconds : float
        Wall-clock time of the batch.
    where : str
        ``'local'`` or the Dask scheduler's address.
    """

    def __init__(self, results, seconds, where):
        super().__init__(results)
        self.seconds = seconds
        self.where = where

    @property
    def counts(self):
        """Number of inputs per status (every status of :data:`STATUSES`)."""
        return {status: sum(r.status == status for r in self) for status in STATUSES}

    @property
    def ok(self):
        """True when every input was converted (now or by an earlier run)."""
        return all(r.status in ("done", "skipped") for r in self)

    def as_dict(self):
        """The report as a plain dict: ``counts``, ``seconds``, ``where``
        and ``tasks`` (one dict per input)."""
        from . import __version__
        return {"medfast": __version__, "where": self.where, "seconds": round(self.seconds, 3),
                "counts": self.counts, "tasks": [r.as_dict() for r in self]}

    def write_json(self, path):
        """Write :meth:`as_dict` as JSON (atomically: a complete file or none)."""
        from .io._atomic import atomic_write
        with atomic_write(path) as f:
            f.write((json.dumps(self.as_dict(), indent=2) + "\n").encode("utf-8"))


def _pool_context():
    # forkserver: workers fork from a clean server process that has imported
    # medfast once, not from this one (which may run threads: OpenMP, a
    # progress bar); spawn where there is no forkserver.
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    context.set_forkserver_preload(["medfast.batch"])
    return context


def _run_local(tasks, workers, on_result):
    results = {}
    pending = list(range(len(tasks)))
    breaks = [0] * len(tasks)
    while pending:
        with ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                                 mp_context=_pool_context()) as pool:
            futures = {pool.submit(run_task, tasks[i]): i for i in pending}
            pending = []
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except BrokenProcessPool:
                    breaks[i] += 1
                    if breaks[i] <= _POOL_BREAKS_ALLOWED:
                        pending.append(i)
                        continue
                    results[i] = TaskResult(tasks[i].src, tasks[i].dst, "failed",
                                            "the worker process died (killed, out of "
                                            "memory or crashed)")
                on_result(results[i])
        pending.sort()
    return [results[i] for i in range(len(tasks))]


def _run_dask(tasks, client, on_result):
    from distributed import as_completed as dask_completed

    futures = client.map(run_task, tasks, pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    results = {}
    for future in dask_completed(futures):
        i = index[future.key]
        try:
            results[i] = future.result()
        except Exception as exc:  # a worker killed repeatedly (KilledWorker)...
            results[i] = TaskResult(tasks[i].src, tasks[i].dst, "failed",
                                    f"on the Dask cluster: {_one_line(exc)}")
        on_result(results[i])
    return [results[i] for i in range(len(tasks))]


def run_batch(tasks, workers=None, client=None, on_result=None, progress=None):
    """Run tasks in parallel: worker processes here, or a Dask cluster.

    Parameters
    ----------
    tasks : sequence of Task
    workers : int, optional
        Worker processes (default :func:`default_workers`); 1 runs the
        tasks one after another in this process.  Ignored with `client`.
    client : distributed.Client, optional
        Run the tasks on this Dask cluster instead (the inputs and the
        output folder must be reachable from its workers under the same
        paths).
    on_result : callable, optional
        Called with each :class:`TaskResult` as it arrives (in completion
        order), e.g. to advance a progress bar.
    progress : callable, optional
        For a batch run in this process (one task, or ``workers=1``):
        passed to :func:`medfast.convert` (files read, volumes done).

    Returns
    -------
    BatchReport
        Results in the order of `tasks`.

    Notes
    -----
    A task's exception is its own result (``'failed'``).  A worker process
    that dies (killed, out of memory, a crash in native code) breaks the
    local pool: the tasks not finished then run again in a new pool, and a
    task unfinished at a second break is reported as failed.  On Dask, the
    scheduler retries tasks whose worker died, then reports them failed.
    """
    tasks = list(tasks)
    on_result = on_result or (lambda result: None)
    start = time.perf_counter()
    if client is not None:
        results = _run_dask(tasks, client, on_result)
        where = str(getattr(client.scheduler, "address", "dask"))
    elif (workers or default_workers()) == 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            results.append(run_task(task, progress))
            on_result(results[-1])
        where = "local"
    else:
        results = _run_local(tasks, workers or default_workers(), on_result)
        where = "local"
    return BatchReport(results, time.perf_counter() - start, where)
