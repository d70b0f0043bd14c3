//! SIGINT and SIGTERM, taken from `bench`'s first instruction.
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
