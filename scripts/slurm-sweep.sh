#!/usr/bin/env bash
# One sweep split across the tasks of a Slurm job array, then merged by a dependent job.
#
#   sbatch scripts/slurm-sweep.sh [SCENARIO]               # N = 4 shards (the --array line below)
#   sbatch --array=0-7 scripts/slurm-sweep.sh [SCENARIO]   # N = 8: always 0-(N-1)
#
# - Task i runs `bench sweep --shard i/N`: the points whose index modulo N is i. The shard comes
#   from SLURM_ARRAY_TASK_ID and N from SLURM_ARRAY_TASK_COUNT, so the array must be 0-(N-1)
#   (a throttle such as 0-7%2 is fine).
# - Results go to $BENCH_RESULTS/<array job id>/shard-<i> (default BENCH_RESULTS: reports/slurm in
#   the folder sbatch was run from), which must be on a file system every node sees. Each
#   submission has its own folder, so a run never resumes, merges or publishes the shards of an
#   earlier one (with a fixed BENCH_RESULTS, a new submission used to find the last run's
#   run.json, "resume" it with nothing left to do, and merge the old shards again as new).
# - The first task submits the merge job, which starts when every task has ended (afterany) and
#   writes $BENCH_RESULTS/<array job id>/merged from this submission's shards. It merges whatever
#   finished and warns about missing points; to merge again by hand:
#   target/release/bench merge "$BENCH_RESULTS/<array job id>"/shard-* --out DIR
# - A requeued task (same array job id) resumes its shard: finished points are kept.
# - Exit code 1 of a task means "finished, some points invalid" (see the `valid` column).
#
# Run it from the repository root after `scripts/setup.sh` (the release build and .venv).
#SBATCH --job-name=bench-sweep
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --exclusive
#SBATCH --time=04:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail

: "${SLURM_ARRAY_TASK_ID:?submit this script with sbatch (it is a job array task)}"
cd "${SLURM_SUBMIT_DIR:-.}"
bench=target/release/bench
scenario=${1:-${BENCH_SCENARIO:-scenarios/ensemble.toml}}
results=${BENCH_RESULTS:-$PWD/reports/slurm}/$SLURM_ARRAY_JOB_ID
count=${SLURM_ARRAY_TASK_COUNT:?this Slurm does not set SLURM_ARRAY_TASK_COUNT; export it as N}
index=$SLURM_ARRAY_TASK_ID
out=$results/shard-$index
mkdir -p "$results"

# The first task, on its first try, queues the merge behind the whole array.
if [ "$index" = "${SLURM_ARRAY_TASK_MIN:-0}" ] && [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then
    sbatch --job-name=bench-merge --dependency="afterany:$SLURM_ARRAY_JOB_ID" \
        --output="slurm-%j-merge.out" --time=00:30:00 --cpus-per-task=1 \
        --wrap "$bench merge '$results'/shard-* --out '$results/merged'"
fi

# Only this submission's tasks write here: a requeued task resumes its shard; without a run.json
# nothing of it finished, and --force clears what a killed task began.
if [ -f "$out/run.json" ]; then where=(--resume "$out"); else where=(--out "$out" --force); fi
exec "$bench" sweep --quiet --scenario "$scenario" --shard "$index/$count" "${where[@]}"
