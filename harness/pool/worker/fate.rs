//! How a worker process ended, in words a user can act on.
//!
//! A worker that dies shows first as its connection ending: "the worker closed its connection",
//! or "Connection reset by peer" when a request was being written. Neither says why. The exit
//! status does: a worker killed by SIGKILL (the OOM killer, or someone's `kill -9`), or by SIGXFSZ
//! under `ulimit -f` when it wrote past the file size limit. [`describe`] turns a status into
//! that sentence, with what to check for the signals a user can do something about.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// `killed by SIGKILL (...)`, `exited with code 3`, `exited normally`.
pub(crate) fn describe(status: ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let (name, why) = signal_name(sig);
        let core = if status.core_dumped() {
            ", core dumped"
        } else {
            ""
        };
        return match why {
            "" => format!("killed by {name}{core}"),
            why => format!("killed by {name}{core} ({why})"),
        };
    }
    match status.code() {
        Some(0) => "exited normally".to_string(),
        Some(c) => format!("exited with code {c}"),
        None => format!("ended with {status}"),
    }
}

/// A signal's name and, for those with a likely cause, what to check.
pub(crate) fn signal_name(sig: i32) -> (String, &'static str) {
    let (name, why) = match sig {
        libc::SIGKILL => (
            "SIGKILL",
            "the kernel's OOM killer, or `kill -9`: check memory (dmesg)",
        ),
        libc::SIGXFSZ => (
            "SIGXFSZ",
            "file size limit exceeded: raise `ulimit -f`, or write less",
        ),
        libc::SIGXCPU => ("SIGXCPU", "CPU time limit exceeded: raise `ulimit -t`"),
        libc::SIGSEGV => ("SIGSEGV", "a crash in the runtime or the model"),
        libc::SIGBUS => (
            "SIGBUS",
            "a bad memory access, e.g. a shared-memory file cut short",
        ),
        libc::SIGABRT => ("SIGABRT", "the runtime aborted; see the worker's stderr"),
        libc::SIGFPE => ("SIGFPE", ""),
        libc::SIGILL => ("SIGILL", "an instruction this CPU lacks"),
        libc::SIGTERM => ("SIGTERM", ""),
        libc::SIGINT => ("SIGINT", ""),
        libc::SIGHUP => ("SIGHUP", ""),
        libc::SIGPIPE => ("SIGPIPE", ""),
        libc::SIGQUIT => ("SIGQUIT", ""),
        _ => return (format!("signal {sig}"), ""),
    };
    (name.to_string(), why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_says_which_signal_and_what_to_check() {
        // A raw wait status: the low 7 bits are the signal, 0x80 the core flag, or code << 8.
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert!(
            describe(killed).starts_with("killed by SIGKILL (the kernel's OOM killer"),
            "{}",
            describe(killed)
        );
        let xfsz = ExitStatus::from_raw(libc::SIGXFSZ | 0x80);
        assert_eq!(
            describe(xfsz),
            "killed by SIGXFSZ, core dumped (file size limit exceeded: raise `ulimit -f`, or write less)"
        );
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with code 3");
        assert_eq!(describe(ExitStatus::from_raw(64)), "killed by signal 64");
    }
}
