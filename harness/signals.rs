//! SIGINT and SIGTERM, taken from `bench`'s first instruction; and a closed stdout (SIGPIPE's
//! case), which ends `bench` quietly instead of with a panic.
//!
//! `bench` owns worker processes and half-written result folders, so a signal must always end the
//! same way: the finished points stay, the point in progress is dropped, every worker is reaped and
//! the exit code is 128 + the signal. That must not depend on the dispositions `bench` inherits. A
//! non-interactive shell starts background jobs (`cmd &`, `nohup cmd &`) with SIGINT *ignored*;
//! before this module, a SIGINT that arrived before the sweep had installed tokio's handler was
//! dropped by that inherited `SIG_IGN`, and the sweep ran to the end with exit 0.
//!
//! So [`install`] runs first in `main`. Its handler only records the signal in an atomic (the one
//! thing a handler may safely do). [`wait`] installs tokio's handlers and *then* looks at what was
//! recorded, so a signal that came at any moment before is seen, and one that comes after reaches
//! tokio. Worker processes do not call [`install`]: they are children that die with their parent,
//! and an `exec` resets a handled signal to its default, so they start with the default actions
//! whatever `bench`'s own parent had set.

use std::sync::atomic::{AtomicI32, Ordering};

/// The first SIGINT or SIGTERM received since [`install`], or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(sig: libc::c_int) {
    // Only the first signal is kept: it is the one the exit code reports.
    let _ = PENDING.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Handles SIGINT and SIGTERM by recording them, replacing whatever disposition was inherited
/// (`SIG_IGN` included), and unblocks both.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` with a zeroed struct, an empty mask and a handler that only touches
        // an atomic (async-signal-safe). The previous action is not needed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    // SAFETY: a signal set on the stack, filled by sigemptyset/sigaddset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Ignores SIGXFSZ, so that a write past the file size limit (`ulimit -f`) fails with `EFBIG`,
/// which the write reports as an error naming its file, instead of killing `bench` with exit 153
/// and a half-written folder. Workers get the default back when they start (`pool::worker::spawn`).
pub fn ignore_file_size_signal() {
    // SAFETY: `sigaction` with a zeroed struct (an empty mask) and `SIG_IGN`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGXFSZ, &action, std::ptr::null_mut());
    }
}

/// Whether `err`'s chain holds `EFBIG`: a write past the file size limit (SIGXFSZ is ignored).
pub fn file_too_large(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EFBIG))
    })
}

/// The file size limit (`ulimit -f`) in the shell's 1024-byte blocks, or `unlimited`.
pub fn file_size_limit() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` fills the struct on the stack.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } == 0;
    match ok {
        true if limit.rlim_cur != libc::RLIM_INFINITY => (limit.rlim_cur / 1024).to_string(),
        _ => "unlimited".to_string(),
    }
}

/// The signal recorded since [`install`], if any.
pub(crate) fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Waits for SIGINT or SIGTERM (or finds one that came earlier), then sets `cancel` and returns the
/// signal. `None` when tokio cannot install its handlers.
pub(crate) async fn wait(cancel: tokio::sync::watch::Sender<bool>) -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).ok()?;
    let mut term = signal(SignalKind::terminate()).ok()?;
    // Tokio's handlers are in place: a signal from now on reaches them, and one from before was
    // recorded by ours.
    let sig = match pending() {
        Some(s) => s,
        None => tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
        },
    };
    let _ = cancel.send(true);
    Some(sig)
}

/// Makes a closed stdout end `bench` silently with exit 0, as `ls | head` does.
///
/// Rust ignores SIGPIPE, so a write to a pipe whose reader is gone (`bench inspect a.onnx | true`)
/// fails with `EPIPE`, and `println!` panics on that failure: exit 101 and a backtrace for what is
/// the reader's choice. SIGPIPE cannot get its default action back, because the parent writes to
/// its workers' pipes and must survive a worker that died. So the panic hook looks at the cause:
/// a panic that names a broken pipe while stdout's reader is gone ends the process with 0, and any
/// other panic goes on to the default hook. `main` does the same for an error that reaches it.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe(message) && stdout_closed() {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Whether `message` names `EPIPE` as Rust's standard library prints it.
fn is_broken_pipe(message: &str) -> bool {
    message.contains("Broken pipe") || message.contains("os error 32")
}

/// Whether `err`'s chain holds a broken pipe and stdout's reader is gone: the error of a command
/// whose output nobody reads any more, which `main` ends silently.
pub fn closed_stdout_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || is_broken_pipe(&e.to_string())
    }) && stdout_closed()
}

/// Whether stdout is a pipe or socket whose reading end is closed: `poll` reports an error
/// condition (a pipe) or a hang-up (a socket) on the writing end then, without writing anything.
fn stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` on the stack, a count of 1 and no wait.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_signal_keeps_the_first() {
        record(libc::SIGTERM);
        record(libc::SIGINT);
        assert_eq!(pending(), Some(libc::SIGTERM));
        PENDING.store(0, Ordering::SeqCst);
        assert_eq!(pending(), None);
    }
}

#[cfg(test)]
mod pipe_tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_told_by_its_message() {
        assert!(is_broken_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe("index out of bounds"));
    }
}
