# Installs Debian packages with apt-get, waiting for another package install to finish first.
# Sourced by scripts/setup.sh: `. scripts/lib/debian.sh; debian_install chromium`.
#
# A fresh cloud machine often runs its own updates in its first minutes, and apt-get then stopped
# at once: "Could not get lock /var/lib/dpkg/lock-frontend. It is held by process ... (apt-get)".
# So debian_install waits, saying what it waits for (the lock and the process that holds it, read
# from /proc/locks), up to BENCH_APT_LOCK_WAIT_S seconds (default 900), and passes apt-get the same
# wait (DPkg::Lock::Timeout) for a lock taken between its look and apt-get's own.
#
# For the test only (tests/it/rough_edges.rs), two variables stand in for what needs root:
# BENCH_DPKG_LOCK (the lock file) and BENCH_APT_GET (the apt-get command).

# The pids holding a lock (POSIX or flock) on file $1, one per line; nothing when it is free.
debian_lock_holders() {
  local inode
  inode=$(stat -c %i "$1" 2>/dev/null) || return 0
  # /proc/locks: "1: POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; a waiter's line has "->".
  awk -v ino="$inode" '$2 != "->" && $6 ~ (":" ino "$") { print $5 }' /proc/locks | sort -u
}

# Waits until no process holds the dpkg lock, saying which one does; fails after the wait.
debian_wait_for_lock() {
  local lock=${BENCH_DPKG_LOCK:-/var/lib/dpkg/lock-frontend}
  local limit=${BENCH_APT_LOCK_WAIT_S:-900}
  local waited=0 holders
  while holders=$(debian_lock_holders "$lock") && [ -n "$holders" ]; do
    if [ "$waited" = 0 ]; then
      local who="" pid
      for pid in $holders; do
        who="$who $pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo gone))"
      done
      echo "setup: waiting for another package install to finish: $lock is held by process$who (up to ${limit}s)" >&2
    fi
    if [ "$waited" -ge "$limit" ]; then
      echo "setup: $lock is still held after ${limit}s; run again once the other install is done (or set BENCH_APT_LOCK_WAIT_S)" >&2
      return 2
    fi
    sleep 1
    waited=$((waited + 1))
  done
  if [ "$waited" -gt 0 ]; then
    echo "setup: $lock is free after ${waited}s; installing" >&2
  fi
}

# apt-get update, then install the packages $@ without recommends.
debian_install() {
  local apt=${BENCH_APT_GET:-apt-get}
  local wait=(-o "DPkg::Lock::Timeout=${BENCH_APT_LOCK_WAIT_S:-900}")
  debian_wait_for_lock || return
  $apt "${wait[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $apt "${wait[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
}
