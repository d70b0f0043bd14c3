//! A precise timer for the open-loop generator: a Linux `timerfd` driven by tokio's reactor.
//!
//! tokio's own timer has millisecond granularity, which would make most open-loop sends lag by up
//! to a millisecond. A timerfd wakes the runtime within tens of microseconds of the deadline without
//! spinning; the remaining lateness is measured as send lag, never hidden.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub(crate) struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
    armed_for: Option<Instant>,
}

impl PreciseTimer {
    pub(crate) fn new() -> std::io::Result<PreciseTimer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // Tighten this thread's timer slack from the default 50 µs to 1 µs.
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000u64) };
        // SAFETY: the AsyncFd takes ownership of the timerfd, so it stays open while registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(PreciseTimer {
            fd,
            armed_for: None,
        })
    }

    /// Arms the timer for `deadline` (a deadline already past fires at once). Re-arming for the
    /// same deadline is free.
    pub(crate) fn arm(&mut self, deadline: Instant) -> std::io::Result<()> {
        if self.armed_for == Some(deadline) {
            return Ok(());
        }
        let d = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            },
        };
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        self.armed_for = Some(deadline);
        Ok(())
    }

    /// Waits until the armed deadline has passed.
    pub(crate) async fn fired(&mut self) -> std::io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match rustix::io::read(self.fd.get_ref(), &mut buf) {
                Ok(_) => {
                    self.armed_for = None;
                    return Ok(());
                }
                Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sleeps until `deadline`.
    pub(crate) async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
        if deadline <= Instant::now() {
            return Ok(());
        }
        self.arm(deadline)?;
        self.fired().await
    }
}

/// Asks the kernel to keep CPU wake-up latency at most `us` microseconds while the returned file
/// stays open.
pub(crate) fn hold_cpu_dma_latency(us: u32) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")
        .context("--cpu-dma-latency: cannot open /dev/cpu_dma_latency (it needs root); run without the flag")?;
    f.write_all(&(us as i32).to_ne_bytes())
        .context("--cpu-dma-latency: cannot write /dev/cpu_dma_latency")?;
    Ok(f)
}

/// `--realtime`: who runs under SCHED_FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Realtime {
    /// The parent only: the load generator and the reading of replies. Workers start under the
    /// normal policy (SCHED_RESET_ON_FORK), so they still share the CPU with the machine's other
    /// work, as a deployment would.
    Generator,
    /// The workers as well: the whole measurement runs ahead of the machine's other work.
    All,
}

impl Realtime {
    pub(crate) fn parse(s: &str) -> Option<Realtime> {
        match s {
            "generator" => Some(Realtime::Generator),
            "all" => Some(Realtime::All),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Realtime::Generator => "generator",
            Realtime::All => "all",
        }
    }
}

/// Puts the calling thread under SCHED_FIFO at the lowest real-time priority (1), for the rest of
/// its life. Threads and processes it starts later inherit the policy, except that with
/// [`Realtime::Generator`] processes start under the normal policy again.
///
/// Why: on a shared 2-vCPU VM, a woken generator waits behind whatever else runs (a build, say)
/// and sends late; under SCHED_FIFO it runs first. The kernel's real-time throttling
/// (`sched_rt_runtime_us`, 95% by default) still leaves the rest of the machine a share, and the
/// generator sleeps between sends unless `spin` is set. Measured in docs/measurements.md.
pub(crate) fn enter_realtime(who: Realtime) -> anyhow::Result<()> {
    enter_realtime_policy(who)?;
    REALTIME.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Whether `--realtime` is in force in this process, so that advice does not suggest it again.
static REALTIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`enter_realtime`] succeeded in this process.
pub(crate) fn realtime_in_force() -> bool {
    REALTIME.load(std::sync::atomic::Ordering::Relaxed)
}

fn enter_realtime_policy(who: Realtime) -> anyhow::Result<()> {
    let mut policy = libc::SCHED_FIFO;
    if who == Realtime::Generator {
        policy |= libc::SCHED_RESET_ON_FORK;
    }
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!(
            "--realtime: the kernel refused SCHED_FIFO ({e}); it needs root, CAP_SYS_NICE or a \
             real-time priority limit (`ulimit -r 1`); run without the flag"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy of this thread, and of a process started from it (`/proc/self/sched`).
    fn policies() -> (i32, String) {
        // SAFETY: pid 0 is this thread.
        let own = unsafe { libc::sched_getscheduler(0) };
        let out = std::process::Command::new("sh")
            .args(["-c", "grep '^policy' /proc/self/sched"])
            .output()
            .unwrap();
        (own, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn realtime_for_the_generator_leaves_child_processes_normal() {
        for (who, child_policy) in [(Realtime::Generator, 0), (Realtime::All, libc::SCHED_FIFO)] {
            // A thread of its own: the policy stays with it.
            let r = std::thread::spawn(move || enter_realtime(who).map(|()| policies()))
                .join()
                .unwrap();
            let (own, child) = match r {
                Ok(p) => p,
                Err(e) => {
                    // Not permitted here: the error says what it needs.
                    let e = format!("{e:#}");
                    assert!(e.contains("CAP_SYS_NICE") && e.contains("ulimit -r"), "{e}");
                    return;
                }
            };
            assert_eq!(own & !libc::SCHED_RESET_ON_FORK, libc::SCHED_FIFO);
            let child: i32 = child
                .rsplit(':')
                .next()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no policy in {child:?}"));
            assert_eq!(child, child_policy, "{who:?}");
        }
    }

    #[test]
    fn wakes_after_the_deadline_and_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t = PreciseTimer::new().unwrap();
            for us in [200u64, 1_500, 3_000] {
                let deadline = Instant::now() + Duration::from_micros(us);
                t.sleep_until(deadline).await.unwrap();
                assert!(Instant::now() >= deadline);
            }
            // A past deadline returns at once.
            let past = Instant::now();
            t.sleep_until(past).await.unwrap();
        });
    }
}
