//! Starting a worker process: this executable (or any program, for the torch runtime's Python
//! worker) with one end of a new socketpair and the other descriptors it must inherit, a null
//! stdin and stdout, killed with the parent and when its handle is dropped. Apart from the pool so
//! that `bench calibrate`'s echo peer starts the same way without a pool.

use std::os::fd::AsRawFd;
use std::process::Stdio;

use anyhow::Context;

use crate::pool::transfer::shm::clear_cloexec_in_child;

/// The executable started as a worker: this one, or `BENCH_WORKER_EXE` (for tests that drive the
/// pool from a test binary).
fn worker_exe() -> anyhow::Result<std::path::PathBuf> {
    match std::env::var_os("BENCH_WORKER_EXE") {
        Some(p) if !p.is_empty() => Ok(p.into()),
        _ => std::env::current_exe().context("cannot find the bench executable"),
    }
}

/// Starts this executable with `args` plus `--fd N`, where N is the child's end of a new socketpair.
/// The child gets a null stdin and stdout, dies with the parent (`PR_SET_PDEATHSIG`) and is killed
/// when the returned handle is dropped. Returns the child and the parent's end of the socket.
pub(crate) fn spawn_self(
    args: &[String],
    stderr: Stdio,
    inherit: &[std::os::fd::RawFd],
) -> anyhow::Result<(tokio::process::Child, std::os::unix::net::UnixStream)> {
    spawn(&worker_exe()?, args, stderr, inherit)
}

/// As [`spawn_self`], for any program (the torch runtime's Python worker).
pub(crate) fn spawn(
    exe: &std::path::Path,
    args: &[String],
    stderr: Stdio,
    inherit: &[std::os::fd::RawFd],
) -> anyhow::Result<(tokio::process::Child, std::os::unix::net::UnixStream)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().context("socketpair")?;
    let fd = theirs.as_raw_fd();
    let inherit = inherit.to_vec();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(args)
        .arg("--fd")
        .arg(fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls (fcntl, prctl, sigaction) between fork and exec; the
    // sigaction struct is zeroed (an empty mask) with the default action.
    unsafe {
        cmd.pre_exec(move || {
            for &f in std::iter::once(&fd).chain(&inherit) {
                clear_cloexec_in_child(f)?;
            }
            // The child dies with the parent, so a killed parent leaves no orphans.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent ignores SIGXFSZ (`signals::install`), and an ignored signal stays ignored
            // across exec: give the worker the default back, so that one past `ulimit -f` ends
            // as it always did, and is reported as killed by SIGXFSZ.
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGXFSZ, &dfl, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    Ok((child, ours))
}
