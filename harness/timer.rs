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

pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
    armed_for: Option<Instant>,
}

impl PreciseTimer {
    pub fn new() -> std::io::Result<PreciseTimer> {
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
    pub fn arm(&mut self, deadline: Instant) -> std::io::Result<()> {
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
    pub async fn fired(&mut self) -> std::io::Result<()> {
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
    pub async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
        if deadline <= Instant::now() {
            return Ok(());
        }
        self.arm(deadline)?;
        self.fired().await
    }
}

/// Asks the kernel to keep CPU wake-up latency at most `us` microseconds while the returned file
/// stays open.
pub fn hold_cpu_dma_latency(us: u32) -> anyhow::Result<std::fs::File> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
