"""The ray engine: the same jobs on a Ray cluster (``pip install 'moodscope[ray]'``).

Analysis is a Ray Data pipeline (:meth:`RayEngine.analyze`):

1. the inputs (local paths or fsspec URLs), largest files first, one file per block (a few per block
   when the model runs in the decode tasks, below);
2. **decode tasks** (``map_batches`` with a generator, one file per call, as many at a time as the
   cluster has CPUs, reserving none: see :data:`DECODE_CPUS`): decode the file block by
   block, cut whole 5-s segments and compute what the model needs of them
   (:func:`~moodscope.analysis.pretrained.segment_inputs`: the Table 2 features for ``fast``,
   musicnn's log-mel patches for ``accurate``), in rows of :data:`SEGMENTS_PER_ROW` segments, and a
   last row per file with its length or its error;
3. **model actors** (a pool of one per CPU, in a placement group that is removed, killing them,
   when the pipeline ends): each loads the model once and runs it on batches of rows from any
   files (:data:`ROWS_PER_BATCH` rows, so segments are batched across files). A model whose
   forward pass is a small part of the work (``batch_across_files = False``: the paper's networks,
   ``fast``) has no actors: the decode tasks run it on their own rows (one CPU each, up to
   :data:`FILES_PER_DECODE_TASK` files each), which spares the actors' start-up, the rows' trips
   between processes and most of the tasks' start-up;
4. the driver streams the rows back and assembles each file's :class:`~moodscope.analysis.analyzer.Analysis`
   as soon as all its segments are in (duplicate rows of a retried task are ignored), so every
   file is reported exactly once.

Lost workers are Ray's to retry (a decode task :data:`TASK_RETRIES` times, a model actor is
restarted and given its batch again); files still incomplete when the pipeline ends are run once
more, each on its own, and a file that fails then too is reported with
:data:`~moodscope.engine.base.WORKER_DIED`. A file that cannot be decoded is a result with its error.

Other jobs (:meth:`RayEngine.map`, e.g. the feature cache) run one Ray task per file, set up once
per worker process.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import signal
import socket
import threading
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moodscope.analysis.analyzer import BATCH_SEGMENTS
from moodscope.engine.base import WORKER_DIED, Engine, FileResult, Item, Job, failure, largest_first
from moodscope.errors import MoodscopeError

log = logging.getLogger(__name__)

SEGMENTS_PER_ROW = BATCH_SEGMENTS
"""Segments per row between the decode tasks and the model actors: the batches of
:func:`~moodscope.analysis.analyzer.analyze`, so that the models' inputs are computed on the same
stretches of audio (musicnn's resampling sees across segments) and the results are the same."""
ROWS_PER_BATCH = 2
"""Rows per call of a model actor: up to 48 segments, from one file or two."""
FILES_PER_DECODE_TASK = 8
"""Files per decode task when the model runs in the decode tasks (no model actors): starting and
scheduling a task left the cores idle about 60 ms per file with one file per task (``fast`` on
160 tracks: +25 % wall-clock against the local engine; with 4 files +11 %, with 8 +3 %,
``benchmarks/engine.py``). A task whose worker dies is run again whole (its files' rows already
received are ignored)."""
DECODE_TASKS_PER_CPU = 4
"""...but at least this many decode tasks per CPU (or one per file, if fewer), so that the CPUs
finish their last tasks at about the same time."""
TASK_RETRIES = 1
"""Times Ray runs a decode task or a job's task again after its worker process died (a file lost
even so is then run once more on its own: three attempts in all)."""
ACTOR_TASK_RETRIES = 2
"""Times a batch is given to a restarted model actor after the actor died on it."""
DECODE_CPUS = 0
"""CPUs reserved for each decode task. The model actors take one CPU each, one per CPU of the
cluster, and up to as many decode tasks run beside them: the operating system shares each core
between its actor and a decode task, so the cores stay busy whether the model (``accurate``) or
the decoding and features are the larger part of the work. Without model actors (a model that runs
in the decode tasks, ``fast``) each decode task reserves one CPU."""
TASKS_IN_FLIGHT_PER_CPU = 2
"""Tasks of :meth:`RayEngine.map` submitted ahead, per CPU of the cluster."""
CONNECT_TIMEOUT_S = 10.0
"""How long the head at ``--address`` may take to accept a connection."""
JOIN_ATTEMPTS = 1
"""Times Ray tries the head at ``--address`` (``RAY_gcs_server_port_wait_time_s``, unless set): each try
waits up to about 40 s for an answer, and Ray's default of 20 tries looks like a hang."""
IDLE_ACTORS_WARNING = r"The minimum number of concurrent actors for 'MapBatches\(ModelActor\)'"
"""The start of Ray Data's warning about model actors that received no input."""
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
"""The logger of Ray's notices about its authentication mode."""


def _check_address(address: str) -> None:
    """Raise a one-line :class:`MoodscopeError` at once for a Ray Client address (``ray://``), or when
    nothing accepts connections at ``host:port`` ('auto' and other forms are left to Ray)."""
    if address.startswith("ray://"):
        raise MoodscopeError(
            f"--address {address}: Ray Client (ray://) cannot run moodscope's Ray Data pipeline; run the command "
            "on the cluster instead: ray job submit --address http://HEAD:8265 -- moodscope ... --engine ray "
            "--address auto (docs/scaling.md)"
        )
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise MoodscopeError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
            f"`ray start --head --port {port}` on that machine, or give the address of a running cluster's head"
        ) from None


@contextlib.contextmanager
def _join_attempts(n: int) -> Iterator[None]:
    """Ray tries a head that does not answer ``n`` times (unless the user set how many)."""
    key = "RAY_gcs_server_port_wait_time_s"
    if key in os.environ:
        yield
        return
    os.environ[key] = str(n)
    try:
        yield
    finally:
        os.environ.pop(key, None)


def _join_error(address: str, exc: BaseException) -> MoodscopeError:
    """What failed when joining the cluster at ``address``, in one line."""
    causes: list[str] = []
    link: BaseException | None = exc
    while link is not None and len(causes) < 5:
        causes.append(f"{type(link).__name__}: {link}")
        link = link.__cause__ or link.__context__
    if any("AuthToken" in c or "AuthenticationError" in c for c in causes):
        return MoodscopeError(
            f"--address {address}: the Ray cluster there requires its authentication token; run with "
            "RAY_AUTH_MODE=token and the token in RAY_AUTH_TOKEN or ~/.ray/auth_token (see docs/scaling.md)"
        )
    reason = causes[0].split(": ", 1)[-1].splitlines()[0] if causes else "unknown error"
    return MoodscopeError(
        f"--address {address}: cannot join a Ray cluster there ({reason}); give the address of the head as "
        "`ray start --head` printed it (HOST:PORT, port 6379 by default)"
    )


def _default_token_auth_notice(record: logging.LogRecord) -> bool:
    """False for Ray's warning, on every new local instance, that it enabled token authentication by
    default (what it should do: moodscope keeps it, and says nothing); other records pass."""
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster.")


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise MoodscopeError("the ray engine needs Ray: pip install 'moodscope[ray]'") from exc
    return ray


# ---- worker side -------------------------------------------------------------------------------

_WORKER_JOBS: dict[bytes, tuple[Job, contextlib.ExitStack]] = {}


def _job_in_worker(job: Job) -> Job:
    """The job, set up once per worker process (Ray reuses its worker processes between tasks)."""
    from ray import cloudpickle

    token = hashlib.sha256(cloudpickle.dumps(job)).digest()
    if token not in _WORKER_JOBS:
        stack = contextlib.ExitStack()
        stack.enter_context(job.running(in_worker=True))
        _WORKER_JOBS[token] = (job, stack)
    return _WORKER_JOBS[token][0]


def _run_job(job: Job, key: str, path: str) -> FileResult:
    from moodscope.engine.local import run_safely

    return run_safely(_job_in_worker(job), key, path)


_ROW_COLUMNS = ("key", "path", "start", "count", "last", "total", "seconds", "error")


_PICKLED = ("payload", "output")


def _row(key: str, path: str, **values: Any) -> dict[str, np.ndarray]:
    """One row (a batch of one) between the stages; ``payload`` holds the model's pickled inputs,
    ``output`` its pickled outputs (:func:`_outputs`)."""
    defaults = {
        "start": 0,
        "count": 0,
        "last": False,
        "total": 0,
        "seconds": 0.0,
        "error": "",
        "payload": b"",
        "output": b"",
    }
    row = {"key": key, "path": path, **defaults, **values}
    return {name: np.array([value], dtype=object if name in _PICKLED else None) for name, value in row.items()}


def batches_across_files(mood_model: Any) -> bool:
    """Whether the pipeline runs ``mood_model`` in model actors that batch segments across files (its
    ``batch_across_files``; yes unless it says no)."""
    return bool(getattr(mood_model, "batch_across_files", True))


def _outputs(mood_model: Any, inputs: dict[str, np.ndarray]) -> bytes:
    """The pickled (probabilities, valence/arousal or None, OOD verdict or None) of a row's segments."""
    from moodscope.analysis.pretrained import predict_with_ood

    return pickle.dumps(predict_with_ood(mood_model, inputs), protocol=5)


def decode_file(batch: dict[str, np.ndarray], model: Any, predict: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Decode task: the rows of one file (see the module docstring); with ``predict``, their outputs
    too (the model's forward pass run here: no model actors)."""
    from moodscope.analysis.analyzer import SegmentStream, build_analysis
    from moodscope.analysis.pretrained import load_model, segment_inputs
    from moodscope.engine.jobs import limit_threads_to_one
    from moodscope.engine.sources import local_copy

    for key, path in zip(batch["key"], batch["path"]):
        key, path = str(key), str(path)
        try:
            mood_model = load_model(model)
            limit_threads_to_one()  # after loading: torch's threads too, if the model imported it
            with local_copy(path) as local:
                stream = SegmentStream(local, batch=SEGMENTS_PER_ROW)
                start = 0
                for segments in stream:
                    inputs = segment_inputs(mood_model, segments)
                    carried = (
                        {"output": _outputs(mood_model, inputs)}
                        if predict
                        else {"payload": pickle.dumps(inputs, protocol=5)}
                    )
                    yield _row(key, path, start=start, count=len(segments), **carried)
                    start += len(segments)
                if start == 0:
                    build_analysis(path, stream.seconds, mood_model, [])  # raises "too short"
            yield _row(key, path, last=True, total=start, seconds=stream.seconds)
        except Exception as exc:  # the file's result is its error
            yield _row(key, path, last=True, error=failure(key, path, exc).error)


class ModelActor:
    """Model actor: loads the model once, predicts rows of segments from any files."""

    def __init__(self, model: Any):
        from moodscope.analysis.pretrained import load_model
        from moodscope.engine.jobs import limit_threads_to_one

        self.model = load_model(model)
        limit_threads_to_one()  # after loading: torch's threads too, if the model imported it

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from moodscope.analysis.pretrained import predict_with_ood

        counts = batch["count"].astype(int)
        parts = [pickle.loads(p) for p, n in zip(batch["payload"], counts) if n > 0]
        outputs = np.empty(len(counts), dtype=object)
        outputs[:] = [b""] * len(counts)
        if parts:
            inputs = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
            probs, va, ood = predict_with_ood(self.model, inputs)
            offsets = np.cumsum([0, *counts[counts > 0]])
            rows = np.flatnonzero(counts > 0)
            for i, (lo, hi) in zip(rows, itertools.pairwise(offsets)):
                part = (
                    probs[lo:hi],
                    None if va is None else va[lo:hi],
                    None if ood is None else ood.select(slice(lo, hi)),
                )
                outputs[i] = pickle.dumps(part, protocol=5)
        return {**{name: batch[name] for name in _ROW_COLUMNS}, "output": outputs}


# ---- driver side -------------------------------------------------------------------------------


def _analysis_dataset(items: list[Item], model: Any, retries: int, cpus: int, actors_in: Any | None) -> Any:
    """The Ray Data pipeline of :meth:`RayEngine.analyze` (see the module docstring), not yet run;
    ``actors_in`` is the model actors' scheduling strategy, None to run the model in the decode tasks."""
    import ray

    blocks = len(items)  # a file per decode task
    if actors_in is None:  # a few files per task, while there are enough tasks for the CPUs to end together
        blocks = min(blocks, max(-(-blocks // FILES_PER_DECODE_TASK), DECODE_TASKS_PER_CPU * cpus))
    ds: Any = ray.data.from_items([{"key": k, "path": p} for k, p in items], override_num_blocks=blocks)
    with warnings.catch_warnings():
        # the retry limits can only be given as "ray_remote_args", deprecated since Ray 2.60 without a replacement
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(
            decode_file,
            fn_kwargs={"model": model, "predict": actors_in is None},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.TaskPoolStrategy(size=cpus),
            num_cpus=DECODE_CPUS if actors_in is not None else 1,
            max_retries=retries,
        )
        if actors_in is None:
            return ds
        ds = ds.map_batches(
            ModelActor,
            fn_constructor_kwargs={"model": model},
            batch_size=ROWS_PER_BATCH,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=cpus),
            num_cpus=1,
            scheduling_strategy=actors_in,
            max_restarts=-1,
            max_task_retries=ACTOR_TASK_RETRIES,
        )
    return ds


@contextlib.contextmanager
def _placement_group(cpus: int) -> Iterator[Any]:
    """A scheduling strategy for a pipeline's model actors: a placement group of ``cpus`` CPUs of its
    own, removed when the ``with`` block ends (the pipeline finished, failed or was stopped), which
    kills them. Ray Data only drops its handles to them: once (in CI, cause not found) two outlived
    their pipeline holding both CPUs, and the next pipeline waited for its own actors forever."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = ray.util.placement_group([{"CPU": 1}] * cpus, strategy="SPREAD")
    try:
        yield PlacementGroupSchedulingStrategy(group)
    finally:
        ray.util.remove_placement_group(group)


@dataclass
class _Track:
    """The rows of one file received so far."""

    path: str
    chunks: dict[int, tuple] = field(default_factory=dict)  # start -> (probabilities, va or None, ood or None)
    total: int | None = None
    seconds: float = 0.0

    def complete(self) -> bool:
        return self.total is not None and sum(len(out[0]) for out in self.chunks.values()) == self.total


class RayEngine(Engine):
    """A Ray cluster: the one at ``address`` ('auto' or the head's 'host:port'), the one this process is
    already connected to, or a Ray instance started here on ``workers`` CPUs (default: all cores)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None):
        ray = _import_ray()
        self._owned = not ray.is_initialized()
        verbose = logging.getLogger("moodscope").getEffectiveLevel() <= logging.INFO
        if self._owned:
            sigterm = signal.getsignal(signal.SIGTERM)
            if address:
                _check_address(address)
            if not verbose:
                logging.getLogger(AUTH_LOGGER).addFilter(_default_token_auth_notice)
            try:
                with _join_attempts(JOIN_ATTEMPTS) if address else contextlib.nullcontext():
                    ray.init(
                        address=address,
                        num_cpus=None if address else (workers or os.cpu_count() or 1),
                        include_dashboard=False,
                        logging_level=logging.INFO if verbose else logging.WARNING,
                        log_to_driver=verbose,
                        configure_logging=True,
                    )
            except (ConnectionError, RuntimeError) as exc:
                if not address:
                    raise
                raise _join_error(address, exc) from exc
            if sigterm is not None and threading.current_thread() is threading.main_thread():
                # Ray installs its own SIGTERM handler (print a stack trace and abort): keep ours,
                # which stops a command as Ctrl-C does (moodscope.cli)
                signal.signal(signal.SIGTERM, sigterm)
        import ray.data  # type: ignore[no-redef, unused-ignore]  # the module ray above, with its data package

        if not verbose:  # Ray Data's console log: errors only (it still writes its full log file)
            for handler in logging.getLogger("ray.data").handlers:
                if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
                    handler.setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.max_errored_blocks = -1  # a lost block loses files, which are run again
        context.enable_progress_bars = False
        context.print_on_execution_start = False

    @property
    def cpus(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        import ray

        if self._owned and ray.is_initialized():
            ray.shutdown()

    # ---- any job: one task per file ---------------------------------------------------------

    def map(self, job: Job, items: Sequence[Item]) -> Generator[FileResult, None, None]:
        import ray

        remote = ray.remote(max_retries=TASK_RETRIES, num_cpus=1)(_run_job)
        queue = list(largest_first(items))[::-1]
        running: dict[Any, Item] = {}
        limit = TASKS_IN_FLIGHT_PER_CPU * self.cpus
        try:
            while queue or running:
                while queue and len(running) < limit:
                    key, path = queue.pop()
                    running[remote.remote(job, key, path)] = (key, path)
                ready, _ = ray.wait(list(running), num_returns=1)
                key, path = running.pop(ready[0])
                yield self._result(ready[0], key, path)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    @staticmethod
    def _result(ref: Any, key: str, path: str) -> FileResult:
        import ray

        try:
            return ray.get(ref)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError):
            return FileResult(key, None, f"{path}: {WORKER_DIED}")
        except ray.exceptions.RayTaskError as exc:
            return failure(key, path, exc)

    # ---- analysis: the Ray Data pipeline ---------------------------------------------------------

    def analyze(self, items: Sequence[Item], model: Any = None) -> Generator[FileResult, None, None]:
        from moodscope.analysis.pretrained import load_model

        if not items:
            return
        mood_model = load_model(model)  # fails here, once, if the model cannot be loaded
        items = largest_first(items)
        finished: set[str] = set()
        for result in self._pipeline(items, model, mood_model):
            finished.add(result.key)
            yield result
        for key, path in items:  # lost with a block Ray gave up on: once more, alone
            if key not in finished:
                log.warning("%s was lost with a worker; analysing it again on its own", path)
                results = list(self._pipeline([(key, path)], model, mood_model, retries=0))
                yield results[0] if results else FileResult(key, None, f"{path}: {WORKER_DIED}")

    def _pipeline(
        self, items: list[Item], model: Any, mood_model: Any, retries: int = TASK_RETRIES
    ) -> Iterator[FileResult]:
        cpus = min(self.cpus, len(items))  # no idle decoders or model actors (Ray Data warns about them)
        actors = batches_across_files(mood_model)
        with _placement_group(cpus) if actors else contextlib.nullcontext() as actors_in:
            ds = _analysis_dataset(items, model, retries, cpus, actors_in)
            # a file run again alone whose decoder dies leaves the model actors no input; Ray Data warns
            # (from its executor's thread) about idle actors, the file's result says what happened
            warnings.filterwarnings("ignore", message=IDLE_ACTORS_WARNING, category=UserWarning)
            tracks: dict[str, _Track] = {}
            done: set[str] = set()
            for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
                for i in range(len(batch["key"])):
                    key = str(batch["key"][i])
                    if key in done:
                        continue  # a duplicate row of a retried task
                    track = tracks.setdefault(key, _Track(str(batch["path"][i])))
                    if batch["error"][i]:
                        done.add(key)
                        del tracks[key]
                        yield FileResult(key, None, str(batch["error"][i]))
                        continue
                    if batch["last"][i]:
                        track.total, track.seconds = int(batch["total"][i]), float(batch["seconds"][i])
                    elif int(batch["count"][i]):
                        track.chunks[int(batch["start"][i])] = pickle.loads(batch["output"][i])
                    if track.complete():
                        done.add(key)
                        del tracks[key]
                        yield self._assemble(key, track, mood_model)

    @staticmethod
    def _assemble(key: str, track: _Track, mood_model: Any) -> FileResult:
        from moodscope.analysis.analyzer import build_analysis

        outputs = [track.chunks[start] for start in sorted(track.chunks)]
        try:
            return FileResult(key, build_analysis(track.path, track.seconds, mood_model, outputs))
        except Exception as exc:
            return failure(key, track.path, exc)
