//! Transfer throughput: how fast tensor bytes reach a worker by `pipe` and by `shm`, next to a plain
//! single-thread `memcpy` of the same size measured in the same run, from 4 KiB to 64 MiB.
//!
//! Three loops per size, interleaved (one sample of each per repetition, so a change in the
//! machine's load affects all three alike), each summarized by the median after a warm-up:
//! - `memcpy`: `copy_from_slice` between two buffers of this process. The ceiling: no transfer can
//!   deliver bytes faster than one core copies them. Small copies are timed in batches, so the clock
//!   read does not count.
//! - `pipe`: the bytes go through a Unix socketpair to a peer that reads them fully into its buffer and
//!   answers with a one-byte ack; timed from the first byte written to the ack. This is the raw socket,
//!   a floor under the real `pipe` mode, which also encodes and decodes frames.
//! - `shm`: the bytes are copied into the input region of an arena slot, then an 8-byte slot id goes to
//!   the peer, which takes a view of the slot in its own mapping (no copy: what ONNX Runtime gets) and
//!   answers with the ack; timed from the start of the copy to the ack.
//!
//! The peer is a thread, not a process: it is on the far end of a real socketpair and has its own
//! mapping of the arena's `memfd`, so it pays the same kernel copies and wake-ups as a worker would,
//! while the measurement needs no subcommand and no second binary. Only the address-space switch a
//! second process adds to each wake-up is missing (a few hundred nanoseconds). To prove the
//! bytes arrived, the peer checks the first and last byte of every message (two cache lines, the
//! same in both modes) and answers with a failing ack on a mismatch.
//!
//! Throughput is bytes per second of the median request, in GB/s (10^9 bytes per second).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use crate::model::tensor::DType;
use crate::pool::transfer::shm::{ShmArena, ShmLayout, TensorPlacement, read_tensor};

/// The repetitions `measure` is meant to get for small sizes; large sizes get fewer.
pub(crate) const DEFAULT_REPS: usize = 200;
/// Each loop moves about this many bytes per size at most, which caps the repetitions of large sizes
/// (64 MiB gets 16) and keeps a whole run of the default sizes to a few seconds.
const BYTES_PER_LOOP: usize = 1 << 30;
/// Even the largest size is measured at least this often.
const MIN_REPS: usize = 5;
/// A `memcpy` sample copies at least this many bytes, in as many copies as it takes.
const MEMCPY_BATCH_BYTES: usize = 1 << 20;
/// The peer must answer within this, or the measurement fails instead of hanging.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

const MODE_PIPE: u64 = 1;
const MODE_SHM: u64 = 2;
const ACK_OK: u8 = 1;
const ACK_BAD: u8 = 0;

/// 4 KiB, 16 KiB, ..., 64 MiB: eight sizes, four times apart.
pub(crate) fn default_sizes() -> Vec<usize> {
    (0..8).map(|k| 4096 << (2 * k)).collect()
}

/// One size of the throughput table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ThroughputRow {
    pub(crate) size_bytes: u64,
    /// Timed repetitions per loop (after the warm-up).
    pub(crate) reps: u64,
    /// Median time of one copy / one transfer, in nanoseconds.
    pub(crate) memcpy_ns: u64,
    pub(crate) pipe_ns: u64,
    pub(crate) shm_ns: u64,
    /// `size_bytes` over the median time, in 10^9 bytes per second.
    pub(crate) memcpy_gb_s: f64,
    pub(crate) pipe_gb_s: f64,
    pub(crate) shm_gb_s: f64,
    /// `pipe_gb_s / memcpy_gb_s`.
    pub(crate) pipe_vs_memcpy: f64,
    /// `shm_gb_s / memcpy_gb_s`: the target is at least 0.5 at 16 MiB.
    pub(crate) shm_vs_memcpy: f64,
}

/// Repetitions for one size: `reps`, or fewer for large sizes but then never under [`MIN_REPS`].
fn reps_for(size: usize, reps: usize) -> usize {
    reps.min((BYTES_PER_LOOP / size).max(MIN_REPS))
}

/// The byte at position `i` of every message, so the peer can check what arrived.
fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(131).wrapping_add((i >> 12) as u8)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn gb_s(size: usize, t: Duration) -> f64 {
    size as f64 / t.as_nanos().max(1) as f64
}

/// Measures `memcpy`, `pipe` and `shm` at each of `sizes` (bytes), with up to `reps` timed repetitions
/// each after a warm-up. One process, one peer thread, one arena sized for the largest size.
pub(crate) fn measure(sizes: &[usize], reps: usize) -> anyhow::Result<Vec<ThroughputRow>> {
    ensure!(reps > 0, "the repetitions must be at least 1");
    ensure!(
        !sizes.is_empty() && sizes.iter().all(|&s| s > 0),
        "the sizes must be at least one byte each"
    );
    let max = sizes.iter().copied().max().unwrap_or(1);
    let src: Vec<u8> = (0..max).map(pattern).collect();
    let mut dst = vec![1u8; max]; // written, so its pages are faulted in before timing
    let layout = ShmLayout::new(1, max, 0)?;
    let mut arena = ShmArena::create(layout).context("cannot create the shared-memory arena")?;
    let peer_arena = ShmArena::open(arena.fd().try_clone_to_owned()?, layout)?;
    let (mut sock, peer_sock) = UnixStream::pair().context("socketpair")?;
    sock.set_read_timeout(Some(PEER_TIMEOUT))?;
    let peer = std::thread::Builder::new()
        .name("transfer-peer".into())
        .spawn(move || peer_main(peer_sock, &peer_arena, max))
        .context("cannot start the peer thread")?;

    let mut rows = Vec::with_capacity(sizes.len());
    let mut run = || -> anyhow::Result<()> {
        for &size in sizes {
            let n = reps_for(size, reps);
            let warm = (n / 5).max(2);

            let batch = MEMCPY_BATCH_BYTES.div_ceil(size);
            let (mut memcpy, mut pipe, mut shm) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let mut ack = [0u8];
            // One sample of each loop per repetition, so a change in the machine's load while this
            // size is measured affects the three alike.
            for i in 0..warm + n {
                let t0 = Instant::now();
                for _ in 0..batch {
                    dst[..size].copy_from_slice(std::hint::black_box(&src[..size]));
                    std::hint::black_box(&mut dst);
                }
                let copy = t0.elapsed() / batch as u32;

                announce(&mut sock, MODE_PIPE, size)?;
                let t0 = Instant::now();
                sock.write_all(&src[..size])?;
                sock.read_exact(&mut ack).context("no ack from the peer")?;
                let piped = t0.elapsed();
                check_ack(ack[0], "pipe", size)?;

                announce(&mut sock, MODE_SHM, size)?;
                let t0 = Instant::now();
                arena.input_mut(0)?[..size].copy_from_slice(&src[..size]);
                sock.write_all(&0u64.to_le_bytes())?;
                sock.read_exact(&mut ack).context("no ack from the peer")?;
                let shared = t0.elapsed();
                check_ack(ack[0], "shm", size)?;

                if i >= warm {
                    memcpy.push(copy);
                    pipe.push(piped);
                    shm.push(shared);
                }
            }

            let (memcpy, pipe, shm) = (median(memcpy), median(pipe), median(shm));
            let (m, p, s) = (gb_s(size, memcpy), gb_s(size, pipe), gb_s(size, shm));
            rows.push(ThroughputRow {
                size_bytes: size as u64,
                reps: n as u64,
                memcpy_ns: memcpy.as_nanos() as u64,
                pipe_ns: pipe.as_nanos() as u64,
                shm_ns: shm.as_nanos() as u64,
                memcpy_gb_s: m,
                pipe_gb_s: p,
                shm_gb_s: s,
                pipe_vs_memcpy: p / m,
                shm_vs_memcpy: s / m,
            });
        }
        Ok(())
    };
    let outcome = run();
    drop(sock); // the peer sees the end of the stream and returns
    let peer = peer
        .join()
        .map_err(|_| anyhow::anyhow!("the peer thread panicked"))?;
    outcome?;
    peer.context("transfer peer")?;
    Ok(rows)
}

fn check_ack(ack: u8, mode: &str, size: usize) -> anyhow::Result<()> {
    if ack != ACK_OK {
        bail!("the peer received wrong bytes by {mode} at {size} bytes");
    }
    Ok(())
}

/// Tells the peer the mode and size of the next message. Sent before the timed part.
fn announce(sock: &mut UnixStream, mode: u64, size: usize) -> std::io::Result<()> {
    let mut header = [0u8; 16];
    header[..8].copy_from_slice(&mode.to_le_bytes());
    header[8..].copy_from_slice(&(size as u64).to_le_bytes());
    sock.write_all(&header)
}

/// The worker's side: a header (mode, size), then one message, answered with an ack; until the
/// stream ends.
fn peer_main(mut sock: UnixStream, arena: &ShmArena, max: usize) -> anyhow::Result<()> {
    let mut buf = vec![1u8; max];
    let mut header = [0u8; 16];
    let ok = |bytes: &[u8]| {
        let last = bytes.len() - 1;
        bytes[0] == pattern(0) && bytes[last] == pattern(last)
    };
    loop {
        match sock.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let mode = u64::from_le_bytes(header[..8].try_into()?);
        let size = usize::try_from(u64::from_le_bytes(header[8..].try_into()?))?;
        ensure!(size > 0 && size <= max, "bad size {size}");
        let good = match mode {
            MODE_PIPE => {
                sock.read_exact(&mut buf[..size])?;
                ok(&buf[..size])
            }
            MODE_SHM => {
                let mut id = [0u8; 8];
                sock.read_exact(&mut id)?;
                let slot = usize::try_from(u64::from_le_bytes(id))?;
                let placement = TensorPlacement {
                    dtype: DType::U8,
                    shape: vec![size as i64],
                    offset: 0,
                    len: size as u64,
                };
                ok(read_tensor(arena.input(slot)?, &placement)?)
            }
            other => bail!("unknown mode {other}"),
        };
        sock.write_all(&[if good { ACK_OK } else { ACK_BAD }])?;
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The console text: the table, then the verdict on the 16 MiB target when that size was measured.
pub(crate) fn render(rows: &[ThroughputRow]) -> String {
    use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "size",
        "reps",
        "memcpy GB/s",
        "pipe GB/s",
        "shm GB/s",
        "pipe/memcpy",
        "shm/memcpy",
        "pipe µs",
        "shm µs",
    ]);
    for r in rows {
        t.add_row(vec![
            human_size(r.size_bytes),
            r.reps.to_string(),
            format!("{:.2}", r.memcpy_gb_s),
            format!("{:.2}", r.pipe_gb_s),
            format!("{:.2}", r.shm_gb_s),
            format!("{:.2}", r.pipe_vs_memcpy),
            format!("{:.2}", r.shm_vs_memcpy),
            format!("{:.1}", r.pipe_ns as f64 / 1e3),
            format!("{:.1}", r.shm_ns as f64 / 1e3),
        ]);
    }
    for i in 1..9 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut s = format!("{t}\n");
    s.push_str(
        "GB/s = 10^9 bytes/s of the median request. pipe: raw socketpair, no framing. \
         shm: copy into the slot + slot id round trip; the peer reads a view, no copy.\n",
    );
    if let Some(r) = rows.iter().find(|r| r.size_bytes == 16 << 20) {
        s.push_str(&format!(
            "shm at 16 MiB: {:.2} of memcpy (target at least 0.50): {}\n",
            r.shm_vs_memcpy,
            if r.shm_vs_memcpy >= 0.5 {
                "met"
            } else {
                "NOT met"
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_gives_positive_finite_rows() {
        let rows = measure(&[4096, 1 << 20], 3).unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!(r.reps, 3);
            for v in [
                r.memcpy_gb_s,
                r.pipe_gb_s,
                r.shm_gb_s,
                r.pipe_vs_memcpy,
                r.shm_vs_memcpy,
            ] {
                assert!(v.is_finite() && v > 0.0, "{r:?}");
            }
            assert!(r.memcpy_ns > 0 && r.pipe_ns > 0 && r.shm_ns > 0, "{r:?}");
        }
        let text = render(&rows);
        assert!(text.contains("4 KiB") && text.contains("1 MiB"), "{text}");
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(measure(&[], 3).is_err());
        assert!(measure(&[0], 3).is_err());
        assert!(measure(&[4096], 0).is_err());
    }

    #[test]
    fn sizes_and_reps() {
        let s = default_sizes();
        assert_eq!((s[0], *s.last().unwrap(), s.len()), (4096, 64 << 20, 8));
        assert_eq!(reps_for(4096, DEFAULT_REPS), DEFAULT_REPS);
        assert_eq!(reps_for(64 << 20, DEFAULT_REPS), 16);
        assert_eq!(reps_for(1 << 30, 3), 3);
        assert_eq!(reps_for(1 << 30, DEFAULT_REPS), MIN_REPS);
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size(100), "100 B");
    }
}
