"""A grid's cells as cluster jobs through submitit (`pip install 'audio-probe[cluster]'`): one SLURM array job, one task per
cell, or the same tasks as local processes.

Each task trains its own run directory with `--resume`: a complete cell returns at once, a stopped one continues from
its last checkpoint. On SLURM's pre-emption signal or the time limit, submitit asks the task to checkpoint; it is
then requeued and resumes from `latest.pt`, to the same result (resumes are exact; with `--checkpoint-minutes`,
latest.pt is saved inside an epoch too, so little of it is trained again). The run directory's lock (`probe.locks`) keeps a requeued task and a stray one apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.errors import ConfigError
from probe.fileio import write_json
from probe.outputs import claim_output
from probe.train.status import JOB_FILE

LAUNCHERS = ("local", "slurm")


@dataclass(frozen=True)
class LaunchConfig:
    """Where and how the cells run; the SLURM fields are ignored by the local launcher."""

    launcher: str = "local"
    folder: str | None = None
    """submitit's folder for job scripts and logs (default: GRID/.jobs)."""
    partition: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int | None = None
    time_min: int = 24 * 60
    parallel: int | None = None
    """At most this many tasks at once (SLURM's array throttle; default: no limit)."""
    sbatch: dict[str, str] = field(default_factory=dict)
    """Extra sbatch options, e.g. {"account": "abc", "qos": "high"}."""

    def validate(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ConfigError(None, f"--launcher is one of {', '.join(LAUNCHERS)}, not {self.launcher!r}")
        if self.gpus_per_task < 0 or self.time_min < 1 or (self.parallel is not None and self.parallel < 1):
            raise ConfigError(None, "--gpus-per-task must be >= 0, --time-min and --parallel >= 1")


@dataclass
class CellTask:
    """One cell as a submitit task: finetune it (resuming); requeued, not lost, on pre-emption or timeout."""

    cell: Any
    threads: int | None = None
    """torch threads (the task's CPUs): a run's numbers depend on its thread count, so a requeued task keeps it."""

    def __call__(self) -> str:
        from probe.train.cells import torch_threads
        from probe.train.finetune import finetune

        with torch_threads(self.threads):
            return str(finetune(self.cell, resume=True).path)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit's hook on pre-emption and timeout: run this task again (it resumes from its last checkpoint)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(CellTask(self.cell, self.threads))


def executor_for(launch: LaunchConfig, grid: Path):
    """A submitit executor for the launcher, with the job's resources."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(None, "--launcher needs submitit: pip install 'audio-probe[cluster]'") from None
    folder = Path(launch.folder) if launch.folder else grid / ".jobs"
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=launch.launcher)
    executor.update_parameters(timeout_min=launch.time_min, name="probe-finetune",
                               **({"gpus_per_node": launch.gpus_per_task} if launch.gpus_per_task else {}),
                               **({"cpus_per_task": launch.cpus_per_task} if launch.cpus_per_task else {}))
    if launch.launcher == "slurm":
        executor.update_parameters(slurm_partition=launch.partition, slurm_additional_parameters=dict(launch.sbatch),
                                   **({"slurm_array_parallelism": launch.parallel} if launch.parallel else {}))
    return executor


def submit_cells(cells: list[Any], grid: Path, launch: LaunchConfig) -> list[Any]:
    """Submit every cell as one task of one array job; each run directory records its job id (`probe status`)."""
    launch.validate()
    executor = executor_for(launch, grid)
    with executor.batch():
        jobs = [executor.submit(CellTask(cell, launch.cpus_per_task)) for cell in cells]
    for cell, job in zip(cells, jobs):
        claim_output(cell.out, "run", cell.input_paths())
        write_json(Path(cell.out) / JOB_FILE, {"job_id": str(job.job_id), "launcher": launch.launcher})
    return jobs


def launch_cells(config: Any, grid: dict[str, list[Any]] | None, folds: list[int] | None,
                 launch: LaunchConfig) -> tuple[list[Any], list[Any]]:
    """The grid's cells (or the folds of one run) as tasks, after the same leakage checks as a grid run here;
    returns the cells and their jobs."""
    from probe.train.cells import claim_runs
    from probe.train.finetune import check_cells, grid_cells
    from probe.train.loop import fold_configs

    cells = grid_cells(config, grid, folds) if grid else fold_configs(config, folds or [config.fold])
    check_cells(cells)
    claim_runs(config.out, cells)
    return cells, submit_cells(cells, Path(config.out), launch)


def wait_for(jobs: list[Any], cells: list[Any], say) -> list[str]:
    """Wait for every job; a line as each ends; the failed ones' errors, one line each (their runs resume)."""
    failures = []
    for cell, job in zip(cells, jobs):
        try:
            job.result()
            say(f"{Path(cell.out).name}: done (job {job.job_id})")
        except Exception as exc:  # the task's traceback is in its log: one line here, its error's where there is one
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raised = [line for line in lines if re.match(r"[\w.]+(Error|Exception|Interrupt|Exit)\b[^:]*: ", line)]
            message = (raised or lines or [type(exc).__name__])[-1]
            failures.append(f"{cell.out}: job {job.job_id} failed: {message}")
    return failures
