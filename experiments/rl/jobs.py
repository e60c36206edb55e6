"""Run ``icnn rl`` processes in parallel, resumably: the commands and runner behind run_table.py
and search.py.

A job is a command that writes a run folder. It is skipped when the folder already holds a
``metrics.json`` (written last and atomically, so it marks a finished run) or when its pid file
names a live process (another invocation runs it), so two invocations never duplicate work and
an interrupted grid resumes where it stopped. Each job is one single-threaded process under
``nice``; its output goes to its log file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

BATCH_SIZE = 64  # shared by all agents (DDPG's original minibatch; the reference code used 256)


def rl_command(
    env: str, agent: str, seed: int, out: Path, *, steps: int, test_every: int, warmup: int,
    test_episodes: int, extra: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """The ``icnn rl`` command of one run: single-threaded, no progress bar, minibatch
    :data:`BATCH_SIZE`; ``extra`` flags go last (e.g. ``--agent-options ...``)."""
    return (
        sys.executable, "-m", "icnn.cli", "rl", "--env", env, "--agent", agent,
        "--seed", str(seed), "--steps", str(steps), "--test-every", str(test_every),
        "--warmup", str(warmup), "--test-episodes", str(test_episodes),
        "--batch-size", str(BATCH_SIZE), "--threads", "1", "--no-progress", "--out", str(out),
        *extra,
    )


@dataclass(frozen=True)
class Job:
    """One run: ``command`` writes ``out/metrics.json``; output to ``log``; pid beside it."""

    name: str
    command: tuple[str, ...]
    out: Path
    log: Path

    @property
    def pid_file(self) -> Path:
        return self.log.with_suffix(".pid")

    def finished(self) -> bool:
        return (self.out / "metrics.json").is_file()

    def in_progress(self) -> bool:
        """True if another invocation runs this job (its pid file names a live process)."""
        try:
            os.kill(int(self.pid_file.read_text()), 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return False
        return True

    def pending(self) -> bool:
        return not self.finished() and not self.in_progress()


def run_job(job: Job) -> tuple[Job, int | None, float]:
    """Run ``job`` (unless it finished or another invocation holds it): ``(job, exit code, s)``;
    the code is None when the job was skipped."""
    if not job.pending():
        return job, None, 0.0  # finished or taken by another invocation since the list was made
    job.log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(job.log, "w") as handle:
        process = subprocess.Popen(
            ["nice", "-n", "5", *job.command], stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
        job.pid_file.write_text(str(process.pid))
        code = process.wait()
    job.pid_file.unlink(missing_ok=True)
    return job, code, time.perf_counter() - start


def run_jobs(jobs: list[Job], workers: int) -> int:
    """Run the pending ``jobs``, ``workers`` at a time; print one line per job; failure count."""
    pending = [job for job in jobs if job.pending()]
    print(f"{len(pending)} run(s) pending", flush=True)
    failures = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(run_job, job) for job in pending]):
            job, code, seconds = future.result()
            if code is None:
                print(f"{time.strftime('%H:%M:%S')} {job.name}: skipped (finished or run by "
                      "another invocation since the list was made)", flush=True)
                continue
            status = "ok" if code == 0 else f"FAILED (exit {code}, see {job.log})"
            failures += code != 0
            print(f"{time.strftime('%H:%M:%S')} {job.name}: {status} in {seconds:.0f} s", flush=True)
    return failures
