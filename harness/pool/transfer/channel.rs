//! The `spin` channel: requests and replies travel through two rings in shared memory instead of
//! the worker's socket, and a side that waits spins for a short, adaptive time before it parks.
//!
//! # Why
//!
//! A blocking round trip between two processes on a small VM costs 70–95 µs, nearly all of it the
//! kernel waking an idle peer's vCPU; a spinning shared-memory mailbox costs well under a
//! microsecond. For a model that runs in 200 µs, the socket decides the answer. This channel lets
//! both sides see a message the moment it is published, as long as they are still spinning, and
//! falls back to the socket's wake-up only when the peer has gone to sleep.
//!
//! # Layout
//!
//! One anonymous `memfd` per worker (see `shm::arena` for why a memfd: nothing to unlink, freed
//! with the last descriptor), mapped by the parent and by that worker. It holds two rings, one per
//! direction ([`Direction`]), each a header of three cache lines and then `cap` data bytes, `cap`
//! a power of two:
//!
//! | offset | what | written by |
//! |---|---|---|
//! | 0 | `write_pos: u64`, bytes ever published | the producer |
//! | 64 | `read_pos: u64`, bytes ever consumed | the consumer |
//! | 128 | `parked: u32`, 1 while the consumer sleeps | both (see below) |
//! | 192 | data, byte `i` at `i % cap` | the producer |
//!
//! The rings carry the protocol's frames unchanged, as a byte stream: a frame larger than the ring
//! streams through it in pieces, so `pipe` payloads of any size, `shm` slot descriptors and `index`
//! numbers all travel the same way, and the worker's serving loop reads and writes them through
//! [`RingReader`] and [`RingWriter`], which are `std::io::Read` and `Write`.
//!
//! # Waiting, parking and the doorbell
//!
//! A consumer with nothing to read spins for at most its [`SpinBudget`] (past its first turns, each
//! turn also yields the CPU, in case the scheduler put the peer on the same one), then parks: it sets
//! `parked`, looks at the ring once more (a message may have landed in between), and blocks on the
//! worker's socket. A producer publishes `write_pos`, then takes `parked` back to 0; if it was 1,
//! it writes one byte, the doorbell, to the socket. Both sides order those two steps with
//! sequentially consistent atomics (the consumer stores `parked` then loads `write_pos`; the
//! producer stores `write_pos` then swaps `parked`), so at least one of them sees the other's write:
//! either the consumer finds the message, or the producer rings. A doorbell rung after the consumer
//! found the message anyway is harmless: it wakes a later park once, which looks at the ring and
//! parks again.
//!
//! The socket stays open for the worker's whole life and carries only doorbells after the
//! handshake, so a side that parks on it still learns at once that its peer died (end of file);
//! a side that spins learns it when its spin budget ends, microseconds later.
//!
//! A producer whose ring is full (a frame larger than the free space) waits for the consumer,
//! which is active, since it consumes whatever it finds before it ever parks: it spins briefly,
//! then polls every few tens of microseconds.
//!
//! # Safety contract
//!
//! Each ring has one producer and one consumer, in two processes. The producer writes only data
//! bytes in `[read_pos + cap, ...)` modulo `cap` that it has not yet published, and then
//! `write_pos`; the consumer reads only bytes in `[read_pos, write_pos)` and then moves
//! `read_pos`. The release store of a position and the acquire load of it on the other side order
//! the data bytes, so no byte is read while it is written. Inside a process, one [`Producer`] and
//! one [`Consumer`] exist per ring, each used through `&mut self`. A position read from the peer is
//! checked before use (a consumer never trusts `write_pos - read_pos` above `cap`), so a
//! misbehaving peer can corrupt messages, which the frame decoder then refuses, but cannot make
//! this process read or write outside the mapping.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

/// Data bytes of each ring: room for a few requests of a small model at once; a larger frame
/// streams through.
pub(crate) const RING_BYTES: usize = 1 << 20;
/// Header bytes before each ring's data: three cache lines.
const HEADER: usize = 192;
const WRITE_POS: usize = 0;
const READ_POS: usize = 64;
const PARKED: usize = 128;
/// The label of the channel's `memfd` in `/proc/<pid>/fd`.
const MEMFD_NAME: &std::ffi::CStr = c"bench-channel";
/// How long a producer with a full ring spins before it starts to poll.
const FULL_SPIN: Duration = Duration::from_micros(20);
/// How often a producer with a full ring looks again once it polls.
const FULL_POLL: Duration = Duration::from_micros(50);

/// Spin turns that only pause the CPU before each further turn also yields it.
const PAUSE_TURNS: u32 = 64;

/// One turn of a spin. The first [`PAUSE_TURNS`] only pause; later ones also call
/// `sched_yield`, so a peer that the scheduler put on this same CPU runs instead of waiting for
/// this side's time slice to end (about 5 µs a round trip then, against milliseconds for a pure
/// spin), while a side alone on its CPU gets the CPU straight back.
fn spin_turn(turn: u32) {
    if turn < PAUSE_TURNS {
        std::hint::spin_loop();
    } else {
        // SAFETY: sched_yield takes no arguments and touches no memory.
        unsafe { libc::sched_yield() };
    }
}

/// What can go wrong with a channel.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChannelError {
    #[error("{call} failed for the spin channel: {error}")]
    Sys {
        call: &'static str,
        error: io::Error,
    },
    #[error(
        "the spin channel's file holds {0} bytes, which is not two rings of a power-of-two size; \
         parent and worker must come from the same build"
    )]
    BadSize(u64),
    #[error("the spin channel's {0} ring is corrupt (the peer published more than the ring holds)")]
    Corrupt(&'static str),
}

impl From<ChannelError> for io::Error {
    fn from(e: ChannelError) -> io::Error {
        match e {
            ChannelError::Sys { error, .. } => error,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Which way a ring carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Requests, parent to worker.
    ToWorker,
    /// Replies, worker to parent.
    ToParent,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::ToWorker => "request",
            Direction::ToParent => "reply",
        }
    }
}

/// A channel's file and its mapping, shared by its rings' ends.
pub(crate) struct ChannelFile {
    map: MmapRaw,
    file: File,
    cap: usize,
}

impl std::fmt::Debug for ChannelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelFile")
            .field("fd", &self.file.as_raw_fd())
            .field("cap", &self.cap)
            .finish()
    }
}

impl ChannelFile {
    /// Parent side: a new zero-filled, close-on-exec `memfd` holding two rings of `cap` data bytes
    /// (a power of two), its size sealed so a worker cannot shrink it under the parent's mapping.
    pub(crate) fn create(cap: usize) -> Result<Arc<ChannelFile>, ChannelError> {
        assert!(cap.is_power_of_two(), "a ring's size is a power of two");
        let file = super::shm::arena::sealed_memfd(MEMFD_NAME, 2 * (HEADER + cap) as u64)
            .map_err(|(call, error)| ChannelError::Sys { call, error })?;
        ChannelFile::map(file, cap)
    }

    /// Worker side: maps the channel file `fd` the parent passed, with the ring size its length
    /// implies.
    pub(crate) fn open(fd: OwnedFd) -> Result<Arc<ChannelFile>, ChannelError> {
        let file = File::from(fd);
        let len = file
            .metadata()
            .map_err(|error| ChannelError::Sys {
                call: "fstat",
                error,
            })?
            .len();
        let cap = (len / 2).saturating_sub(HEADER as u64);
        if len % 2 != 0 || !cap.is_power_of_two() || cap > (1 << 40) {
            return Err(ChannelError::BadSize(len));
        }
        ChannelFile::map(file, cap as usize)
    }

    fn map(file: File, cap: usize) -> Result<Arc<ChannelFile>, ChannelError> {
        let map = MmapOptions::new()
            .len(2 * (HEADER + cap))
            .map_raw(&file)
            .map_err(|error| ChannelError::Sys {
                call: "mmap",
                error,
            })?;
        Ok(Arc::new(ChannelFile { map, file, cap }))
    }

    /// The descriptor's number, for a child that inherits it.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// The producing end of the ring that carries `dir`. One per ring per process.
    pub(crate) fn producer(self: &Arc<Self>, dir: Direction) -> Producer {
        let ring = Ring::new(self.clone(), dir);
        // A producer restarts from what was published (zero for a new file).
        let pos = ring.write_pos().load(Ordering::Acquire);
        Producer { ring, pos }
    }

    /// A worker's two ends over its `socket`: requests to read, spinning up to `max_spin` before
    /// it parks, and replies to write.
    pub(crate) fn worker_ends(
        self: &Arc<Self>,
        socket: std::os::unix::net::UnixStream,
        max_spin: Duration,
    ) -> io::Result<(
        RingReader<std::os::unix::net::UnixStream>,
        RingWriter<std::os::unix::net::UnixStream>,
    )> {
        let reader = RingReader::new(
            self.consumer(Direction::ToWorker),
            socket.try_clone()?,
            max_spin,
        );
        Ok((
            reader,
            RingWriter::new(self.producer(Direction::ToParent), socket),
        ))
    }

    /// The consuming end of the ring that carries `dir`. One per ring per process.
    pub(crate) fn consumer(self: &Arc<Self>, dir: Direction) -> Consumer {
        let ring = Ring::new(self.clone(), dir);
        let pos = ring.read_pos().load(Ordering::Acquire);
        Consumer { ring, pos }
    }
}

/// One direction's ring inside the mapping.
struct Ring {
    file: Arc<ChannelFile>,
    /// Offset of the ring's header in the mapping.
    at: usize,
    dir: Direction,
}

impl Ring {
    fn new(file: Arc<ChannelFile>, dir: Direction) -> Ring {
        let at = match dir {
            Direction::ToWorker => 0,
            Direction::ToParent => HEADER + file.cap,
        };
        Ring { file, at, dir }
    }

    fn cap(&self) -> usize {
        self.file.cap
    }

    fn word<T>(&self, offset: usize) -> &T {
        // SAFETY: `offset` is one of the header's fields, inside the mapping (its length is
        // 2 * (HEADER + cap) and `at` is 0 or HEADER + cap); the mapping is page aligned and the
        // offsets are multiples of 64, so the pointer is aligned for the atomic; the memory is
        // zero-initialised shared memory that lives as long as `self.file`, and atomics are the
        // only way either process touches these words.
        unsafe { &*(self.file.map.as_ptr().add(self.at + offset) as *const T) }
    }

    fn write_pos(&self) -> &AtomicU64 {
        self.word(WRITE_POS)
    }

    fn read_pos(&self) -> &AtomicU64 {
        self.word(READ_POS)
    }

    fn parked(&self) -> &AtomicU32 {
        self.word(PARKED)
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: the data region starts HEADER bytes after the header, inside the mapping.
        unsafe { self.file.map.as_mut_ptr().add(self.at + HEADER) }
    }

    /// Bytes published and not yet consumed, as seen by a side at `read_pos`; checked against
    /// the ring's size, since `write_pos` comes from the peer.
    fn filled(&self, read_pos: u64, write_pos: u64) -> Result<usize, ChannelError> {
        let n = write_pos.wrapping_sub(read_pos);
        if n > self.cap() as u64 {
            return Err(ChannelError::Corrupt(self.dir.name()));
        }
        Ok(n as usize)
    }
}

/// The end of a ring that writes.
pub(crate) struct Producer {
    ring: Ring,
    /// Bytes published so far (this side alone moves `write_pos`).
    pos: u64,
}

impl Producer {
    /// Copies as much of `bytes` as fits and publishes it. Returns the bytes written and whether
    /// the consumer was parked, in which case the caller must ring the doorbell.
    pub(crate) fn try_write(&mut self, bytes: &[u8]) -> Result<(usize, bool), ChannelError> {
        if bytes.is_empty() {
            return Ok((0, false));
        }
        let read = self.ring.read_pos().load(Ordering::Acquire);
        let used = self.ring.filled(read, self.pos)?;
        let n = bytes.len().min(self.ring.cap() - used);
        if n == 0 {
            return Ok((0, false));
        }
        let cap = self.ring.cap();
        let start = (self.pos % cap as u64) as usize;
        let first = n.min(cap - start);
        // SAFETY: both copies stay inside the data region ([start, start + first) and
        // [0, n - first), each within `cap`); those bytes are free (not in [read, pos), checked
        // above), so the consumer does not read them until `write_pos` moves below; `bytes` is
        // memory of ours that cannot overlap the mapping's data.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ring.data().add(start), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.ring.data(), n - first);
        }
        self.pos += n as u64;
        // Publish, then look for a parked consumer: see "Waiting, parking and the doorbell".
        self.ring.write_pos().store(self.pos, Ordering::SeqCst);
        let ring = self.ring.parked().swap(0, Ordering::SeqCst) == 1;
        Ok((n, ring))
    }
}

/// The end of a ring that reads.
pub(crate) struct Consumer {
    ring: Ring,
    /// Bytes consumed so far (this side alone moves `read_pos`).
    pos: u64,
}

impl Consumer {
    /// Bytes ready to read.
    pub(crate) fn available(&self) -> Result<usize, ChannelError> {
        let write = self.ring.write_pos().load(Ordering::SeqCst);
        self.ring.filled(self.pos, write)
    }

    /// Copies up to `out.len()` ready bytes into `out` and frees their room; 0 when none is ready.
    pub(crate) fn try_read(&mut self, out: &mut [u8]) -> Result<usize, ChannelError> {
        let n = self.available()?.min(out.len());
        if n == 0 {
            return Ok(0);
        }
        let cap = self.ring.cap();
        let start = (self.pos % cap as u64) as usize;
        let first = n.min(cap - start);
        // SAFETY: the bytes [pos, pos + n) are published (n ≤ write_pos - pos, checked against the
        // ring's size) and the producer does not write them again until `read_pos` moves past
        // them below; both copies stay inside the data region; `out` is ours.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.data().add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(self.ring.data(), out.as_mut_ptr().add(first), n - first);
        }
        self.pos += n as u64;
        self.ring.read_pos().store(self.pos, Ordering::Release);
        Ok(n)
    }

    /// Announces that this side is about to sleep. Returns `true` when bytes arrived meanwhile:
    /// the caller must not sleep then (the flag is taken back).
    pub(crate) fn park(&self) -> Result<bool, ChannelError> {
        self.ring.parked().store(1, Ordering::SeqCst);
        if self.available()? > 0 {
            self.unpark();
            return Ok(true);
        }
        Ok(false)
    }

    /// Back awake (the producer may already have taken the flag back).
    pub(crate) fn unpark(&self) {
        self.ring.parked().store(0, Ordering::SeqCst);
    }
}

/// How long a waiting side spins before it parks, learned from the waits it has seen.
///
/// A wait that ended within `max` (however it ended: caught while spinning, or after a park and a
/// doorbell) shows that spinning about that long pays, so the budget grows to twice that wait, up
/// to `max`. A wait longer than `max` (an idle gap) halves the budget. So a side spins while
/// messages come back to back and stops spinning when they stop, and a budget that shrank to
/// nothing learns again from the first short wait. A `max` of zero never spins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SpinBudget {
    max: Duration,
    current: Duration,
}

impl SpinBudget {
    /// Starts at `max`: the first waits of a run are usually back to back.
    pub(crate) fn new(max: Duration) -> SpinBudget {
        SpinBudget { max, current: max }
    }

    /// How long to spin for the next wait.
    pub(crate) fn limit(&self) -> Duration {
        self.current
    }

    /// Learns from a wait that took `waited`, from its start to the message.
    pub(crate) fn record(&mut self, waited: Duration) {
        if waited <= self.max {
            self.current = self.current.max((waited * 2).min(self.max));
        } else {
            self.current /= 2;
        }
    }
}

/// Rings the doorbell: one byte on the socket, never blocking. A full socket buffer already holds
/// unread doorbells, so a byte that does not fit is not needed.
fn ring_doorbell(fd: RawFd) -> io::Result<()> {
    // SAFETY: sends one byte from a local buffer on a descriptor this process owns.
    let n = unsafe {
        libc::send(
            fd,
            [1u8].as_ptr().cast(),
            1,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n == -1 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// A blocking reader over a ring's consumer end, for the worker: spins up to its budget when the
/// ring is empty, then parks on `socket` until the doorbell rings. End of file on the socket (the
/// parent is gone) reads as the end of the stream.
pub(crate) struct RingReader<S> {
    consumer: Consumer,
    socket: S,
    budget: SpinBudget,
}

impl<S: Read> RingReader<S> {
    pub(crate) fn new(consumer: Consumer, socket: S, max_spin: Duration) -> Self {
        RingReader {
            consumer,
            socket,
            budget: SpinBudget::new(max_spin),
        }
    }

    /// Waits until bytes are ready (`true`) or the socket ends (`false`).
    fn wait(&mut self) -> io::Result<bool> {
        let t0 = Instant::now();
        let limit = self.budget.limit();
        let mut turn = 0;
        loop {
            if self.consumer.available()? > 0 {
                self.budget.record(t0.elapsed());
                return Ok(true);
            }
            if t0.elapsed() >= limit {
                break;
            }
            spin_turn(turn);
            turn += 1;
        }
        let mut bells = [0u8; 64];
        loop {
            if self.consumer.park()? {
                self.budget.record(t0.elapsed());
                return Ok(true);
            }
            let n = match self.socket.read(&mut bells) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.consumer.unpark();
            // Bytes published before the peer went away are still read.
            if self.consumer.available()? > 0 {
                self.budget.record(t0.elapsed());
                return Ok(true);
            }
            if n == 0 {
                return Ok(false);
            }
        }
    }
}

impl<S: Read> Read for RingReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.consumer.try_read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if !self.wait()? {
                return Ok(0);
            }
        }
    }
}

/// A blocking writer over a ring's producer end, for the worker: rings the doorbell on `socket`
/// when the consumer is parked; waits for room when the ring is full.
pub(crate) struct RingWriter<S> {
    producer: Producer,
    socket: S,
}

impl<S: AsRawFd> RingWriter<S> {
    pub(crate) fn new(producer: Producer, socket: S) -> Self {
        RingWriter { producer, socket }
    }
}

impl<S: AsRawFd> Write for RingWriter<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t0 = Instant::now();
        let mut turn = 0;
        loop {
            let (n, ring) = self.producer.try_write(buf)?;
            if ring {
                ring_doorbell(self.socket.as_raw_fd())?;
            }
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // Full: the consumer is draining it (it never parks with bytes to read).
            if t0.elapsed() < FULL_SPIN {
                spin_turn(turn);
                turn += 1;
            } else {
                std::thread::sleep(FULL_POLL);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // every write is published at once
    }
}

/// The parent's end of one worker's channel, for a single-threaded tokio runtime: the request
/// ring's producer and the reply ring's consumer, with the worker's socket for doorbells and
/// liveness.
pub mod parent {
    use super::*;
    use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

    /// Waits for replies: spins (yielding to the runtime's other tasks) up to its budget while
    /// `spin` holds, then parks on the socket.
    pub(crate) struct Replies {
        consumer: Consumer,
        budget: SpinBudget,
    }

    impl Replies {
        pub(crate) fn new(consumer: Consumer, max_spin: Duration) -> Self {
            Replies {
                consumer,
                budget: SpinBudget::new(max_spin),
            }
        }

        /// Reads exactly `out.len()` bytes; `Ok(false)` when the socket ended before the first
        /// byte (a clean end), an error when it ended inside.
        pub(crate) async fn read_exact(
            &mut self,
            out: &mut [u8],
            socket: &OwnedReadHalf,
            spin: &(dyn Fn() -> bool + Sync),
        ) -> io::Result<bool> {
            let mut got = 0;
            while got < out.len() {
                let n = self.consumer.try_read(&mut out[got..])?;
                got += n;
                if n == 0 && !self.wait(socket, spin()).await? {
                    if got == 0 {
                        return Ok(false);
                    }
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            Ok(true)
        }

        /// Waits until bytes are ready (`true`) or the socket ends (`false`).
        async fn wait(&mut self, socket: &OwnedReadHalf, spin: bool) -> io::Result<bool> {
            let t0 = Instant::now();
            if spin {
                let limit = self.budget.limit();
                let mut turn = 0;
                while t0.elapsed() < limit {
                    if self.consumer.available()? > 0 {
                        self.budget.record(t0.elapsed());
                        return Ok(true);
                    }
                    // Spinning on a single-threaded runtime: let the load generator's other
                    // tasks (and the I/O and timer drivers) run between looks, and past the
                    // first turns, a worker the scheduler put on this CPU.
                    if turn >= PAUSE_TURNS {
                        spin_turn(turn);
                    }
                    turn += 1;
                    tokio::task::yield_now().await;
                }
            }
            let mut bells = [0u8; 64];
            loop {
                if self.consumer.park()? {
                    break;
                }
                socket.readable().await?;
                let n = match socket.try_read(&mut bells) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.consumer.unpark();
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                self.consumer.unpark();
                if self.consumer.available()? > 0 {
                    break;
                }
                if n == 0 {
                    return Ok(false);
                }
            }
            if spin {
                self.budget.record(t0.elapsed());
            }
            Ok(true)
        }
    }

    /// Writes requests into the request ring, ringing the doorbell when the worker is parked.
    pub(crate) struct Requests {
        producer: Producer,
    }

    impl Requests {
        pub(crate) fn new(producer: Producer) -> Self {
            Requests { producer }
        }

        /// Writes all of `bytes`; waits for room while the ring is full, unless `dead` says the
        /// worker is gone.
        pub(crate) async fn write_all(
            &mut self,
            mut bytes: &[u8],
            socket: &OwnedWriteHalf,
            dead: &(dyn Fn() -> bool + Sync),
        ) -> io::Result<()> {
            let t0 = Instant::now();
            while !bytes.is_empty() {
                let (n, ring) = self.producer.try_write(bytes)?;
                if ring {
                    match socket.try_write(&[1]) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                bytes = &bytes[n..];
                if n == 0 {
                    if dead() {
                        return Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "the worker is gone",
                        ));
                    }
                    if t0.elapsed() < FULL_SPIN {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(FULL_POLL).await;
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::fd::FromRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn bytes_cross_the_ring_in_order_across_the_wrap() {
        let file = ChannelFile::create(64).unwrap();
        let mut p = file.producer(Direction::ToWorker);
        let mut c = file.consumer(Direction::ToWorker);
        let mut sent = Vec::new();
        let mut got = Vec::new();
        let mut out = [0u8; 48];
        for round in 0..20u8 {
            let msg: Vec<u8> = (0..40)
                .map(|i| round.wrapping_mul(7).wrapping_add(i))
                .collect();
            let (n, _) = p.try_write(&msg).unwrap();
            assert_eq!(n, 40, "an emptied ring takes 40 of 64 bytes");
            sent.extend_from_slice(&msg);
            let n = c.try_read(&mut out).unwrap();
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, sent);
    }

    #[test]
    fn a_full_ring_takes_only_what_fits() {
        let file = ChannelFile::create(16).unwrap();
        let mut p = file.producer(Direction::ToParent);
        let mut c = file.consumer(Direction::ToParent);
        assert_eq!(p.try_write(&[9; 40]).unwrap().0, 16);
        assert_eq!(p.try_write(&[9; 4]).unwrap().0, 0);
        let mut out = [0u8; 10];
        assert_eq!(c.try_read(&mut out).unwrap(), 10);
        assert_eq!(p.try_write(&[9; 40]).unwrap().0, 10);
    }

    #[test]
    fn the_two_directions_do_not_share_bytes() {
        let file = ChannelFile::create(64).unwrap();
        file.producer(Direction::ToWorker)
            .try_write(b"request")
            .unwrap();
        let c = file.consumer(Direction::ToParent);
        assert_eq!(c.available().unwrap(), 0);
        let mut out = [0u8; 16];
        let n = file
            .consumer(Direction::ToWorker)
            .try_read(&mut out)
            .unwrap();
        assert_eq!(&out[..n], b"request");
    }

    #[test]
    fn a_producer_rings_only_for_a_parked_consumer() {
        let file = ChannelFile::create(64).unwrap();
        let mut p = file.producer(Direction::ToWorker);
        let c = file.consumer(Direction::ToWorker);
        assert!(!p.try_write(b"a").unwrap().1, "nobody parked");
        assert!(c.park().unwrap(), "a byte is waiting: no park");
        let mut c = c;
        c.try_read(&mut [0u8; 4]).unwrap();
        assert!(!c.park().unwrap(), "empty: parked");
        assert!(p.try_write(b"b").unwrap().1, "parked: ring");
        assert!(!p.try_write(b"c").unwrap().1, "the flag was taken back");
    }

    #[test]
    fn a_peer_that_publishes_past_the_ring_is_refused() {
        let file = ChannelFile::create(64).unwrap();
        let c = file.consumer(Direction::ToWorker);
        c.ring.write_pos().store(65, Ordering::SeqCst);
        assert!(matches!(c.available(), Err(ChannelError::Corrupt(_))));
    }

    #[test]
    fn a_worker_maps_the_file_the_parent_made() {
        let file = ChannelFile::create(1024).unwrap();
        // SAFETY: dup returns a new descriptor that this test owns alone.
        let dup = unsafe { OwnedFd::from_raw_fd(libc::dup(file.raw_fd())) };
        let theirs = ChannelFile::open(dup).unwrap();
        file.producer(Direction::ToWorker).try_write(b"hi").unwrap();
        let mut out = [0u8; 2];
        theirs
            .consumer(Direction::ToWorker)
            .try_read(&mut out)
            .unwrap();
        assert_eq!(&out, b"hi");
    }

    #[test]
    fn a_file_of_the_wrong_size_is_refused() {
        // SAFETY: a valid name; the descriptor is checked and owned by the File below.
        let raw = unsafe { libc::memfd_create(c"t".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: `raw` was just created and is owned by nothing else.
        let f = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        f.set_len(1000).unwrap();
        assert!(matches!(
            ChannelFile::open(OwnedFd::from(f)),
            Err(ChannelError::BadSize(1000))
        ));
    }

    #[test]
    fn the_budget_grows_with_short_waits_and_shrinks_with_idle_gaps() {
        let us = Duration::from_micros;
        let mut b = SpinBudget::new(us(100));
        assert_eq!(b.limit(), us(100));
        b.record(us(500)); // idle gap
        assert_eq!(b.limit(), us(50));
        b.record(us(500));
        b.record(us(500));
        assert_eq!(b.limit(), us(12) + Duration::from_nanos(500));
        b.record(us(30)); // a short wait: spinning twice that long would have caught it
        assert_eq!(b.limit(), us(60));
        b.record(us(5)); // shorter waits never shrink it
        assert_eq!(b.limit(), us(60));
        b.record(us(80));
        assert_eq!(b.limit(), us(100), "capped at max");
        let mut never = SpinBudget::new(Duration::ZERO);
        never.record(Duration::ZERO);
        assert_eq!(never.limit(), Duration::ZERO, "a max of zero never spins");
    }

    /// A reader and a writer in two threads, with the doorbell on a socket pair: every frame
    /// arrives whole and in order, whether the reader spins or parks, and whatever the frame sizes
    /// against the ring.
    fn stream_through(sizes: &[usize], cap: usize, spin: Duration) {
        let file = ChannelFile::create(cap).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let mut w = RingWriter::new(file.producer(Direction::ToWorker), a);
        let mut r = RingReader::new(file.consumer(Direction::ToWorker), b, spin);
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let expect = frames.clone();
        let t = std::thread::spawn(move || {
            for f in &frames {
                w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
                w.write_all(f).unwrap();
            }
            // Dropping the writer closes its socket: the reader then sees the end.
        });
        for f in &expect {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).unwrap();
            let mut got = vec![0u8; u32::from_le_bytes(len) as usize];
            r.read_exact(&mut got).unwrap();
            assert_eq!(&got, f);
        }
        t.join().unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the end of the socket ends the stream");
    }

    #[test]
    fn frames_larger_than_the_ring_stream_through_it() {
        stream_through(
            &[10, 5000, 3, 100_000, 0, 64],
            256,
            Duration::from_micros(50),
        );
    }

    #[test]
    fn a_reader_that_never_spins_is_woken_by_the_doorbell() {
        stream_through(&[1, 2, 3, 70_000, 4], 1024, Duration::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_frames_cross_any_ring_whole_and_in_order(
            sizes in proptest::collection::vec(0usize..3000, 0..12),
            cap_log in 4u32..12,
            spin_us in 0u64..30,
        ) {
            stream_through(&sizes, 1 << cap_log, Duration::from_micros(spin_us));
        }
    }
}
