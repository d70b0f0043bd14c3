//! The parent's side of the workers: spawn, handshake with deadlines, route requests, shut down.
//!
//! Each worker is a child process with one Unix socket (a socketpair; the child inherits its end as a
//! file descriptor). Requests are written by whichever load-generator client sends them; one reader
//! task per worker completes the matching pending request when its reply arrives, by request id, so
//! replies may come in any order (a worker with `worker_concurrency` above 1 answers in the order
//! its runs finish). The pool never caps a worker's requests in flight: the worker's socket is its
//! queue, and it takes up to `worker_concurrency` of them at a time. If a worker's
//! connection ends, every request still pending on it fails with `worker_lost`, so no client waits
//! forever.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;

/// A finished run is one type from the worker's reply to the request's outcome.
pub(crate) use crate::pool::protocol::Finished;
use crate::pool::protocol::{self, FromWorker, ModelLoad, ProtocolError, Setup, ToWorker};
/// Requests name their inputs the way the point's transfer mode staged them.
pub use crate::pool::transfer::InputsRef;
use crate::pool::transfer::channel::{self, ChannelFile, Direction};
use crate::pool::transfer::shm::SlotPool;
use crate::scenario::{Channel, Runtime};

/// Starting a process with inherited descriptors lives in `spawn.rs`; these paths stay here.
pub(crate) use super::spawn::{spawn, spawn_self};

/// How long a worker may take from spawn to "ready" (loading every model included).
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker may take to say goodbye and exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Keep at most this much of a worker's stderr for error messages.
const STDERR_KEEP: usize = 16 * 1024;

/// The outcome of one request.
#[derive(Debug)]
pub enum Reply {
    /// The worker ran it: the run as the worker reported it.
    Done(Finished),
    /// The runtime reported an error for this request.
    Failed(String),
    /// The worker's connection ended before it answered.
    Lost(String),
    /// No answer within the request timeout.
    TimedOut(Duration),
}

/// The borrowed twin of [`ToWorker::Run`], so a sample is encoded without being cloned. Its variant
/// order must match [`ToWorker`] (and [`InputsRef`]'s that of [`protocol::Inputs`]); a test checks
/// that both encode alike.
#[derive(Serialize)]
enum ToWorkerRef<'a> {
    #[allow(dead_code)]
    Setup(&'a Setup),
    Run {
        id: u64,
        model: u32,
        inputs: InputsRef<'a>,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// What a worker reported when it became ready.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub(crate) id: u32,
    pub(crate) pid: u32,
    pub(crate) loads: Vec<ModelLoad>,
    pub(crate) rss_ready_bytes: u64,
    pub runtime: String,
    /// Spawn to ready, in wall time.
    pub(crate) start: Duration,
}

/// A running worker.
pub struct Worker {
    pub(crate) info: WorkerInfo,
    child: tokio::sync::Mutex<tokio::process::Child>,
    /// Set when the connection ended (crash, kill, protocol error).
    dead: Arc<std::sync::atomic::AtomicBool>,
    writer: tokio::sync::Mutex<Sender>,
    pending: Pending,
    /// Requests in flight (the `spin` channel's reply reader spins only while there are some).
    outstanding: Arc<AtomicUsize>,
    /// How many requests it runs at once (`worker_concurrency`).
    concurrency: usize,
    /// Which models this worker holds, as far as the parent knows (on-demand loads and evictions
    /// are learned from replies; a send to a non-holder marks it at once, so followers queue there).
    holds: Mutex<Vec<bool>>,
    stderr: Arc<Mutex<String>>,
    bye: Mutex<Option<oneshot::Receiver<(u64, u64)>>>,
    reader: tokio::task::JoinHandle<()>,
    /// How the process ended (`fate::describe`), once a lost request has looked.
    fate: std::sync::OnceLock<String>,
}

impl Worker {
    /// Spawns `bench worker`, completes the handshake and waits until its models are loaded.
    pub(crate) async fn start(
        setup: Setup,
        shm_fd: Option<std::os::fd::RawFd>,
    ) -> anyhow::Result<Worker> {
        let id = setup.worker;
        let started = Instant::now();
        let (mut child, ours, channel) = spawn_worker(&setup, shm_fd)?;
        let pid = child.id().unwrap_or(0);
        let stderr = keep_stderr(&mut child);
        ours.set_nonblocking(true)?;
        let stream = UnixStream::from_std(ours)?;
        let (mut rd, mut wr) = stream.into_split();
        let (loads, rss_ready_bytes, runtime) =
            match start_up(&setup, &mut rd, &mut wr, &mut child).await {
                Ok(ready) => ready,
                Err((e, with_stderr)) => {
                    return Err(failed_start(id, &mut child, &stderr, e, with_stderr).await);
                }
            };
        let pending: Pending = Arc::default();
        let (bye_tx, bye_rx) = oneshot::channel();
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let outstanding = Arc::new(AtomicUsize::new(0));
        let spin_max = Duration::from_nanos(setup.spin_max_ns);
        let (source, ring) = match &channel {
            None => (
                Replies::Socket(tokio::io::BufReader::with_capacity(1 << 16, rd)),
                None,
            ),
            Some(file) => (
                Replies::Spin {
                    replies: channel::parent::Replies::new(
                        file.consumer(Direction::ToParent),
                        spin_max,
                    ),
                    socket: rd,
                    outstanding: outstanding.clone(),
                },
                Some(channel::parent::Requests::new(
                    file.producer(Direction::ToWorker),
                )),
            ),
        };
        let reader = tokio::spawn(read_replies(source, pending.clone(), bye_tx, dead.clone()));
        let holds = (0..setup.models.len())
            .map(|m| setup.preload.contains(&(m as u32)))
            .collect();
        Ok(Worker {
            info: WorkerInfo {
                id,
                pid,
                loads,
                rss_ready_bytes,
                runtime,
                start: started.elapsed(),
            },
            child: tokio::sync::Mutex::new(child),
            dead,
            writer: tokio::sync::Mutex::new(Sender { socket: wr, ring }),
            pending,
            outstanding,
            concurrency: setup.worker_concurrency.max(1) as usize,
            holds: Mutex::new(holds),
            stderr,
            bye: Mutex::new(Some(bye_rx)),
            reader,
            fate: std::sync::OnceLock::new(),
        })
    }

    /// Requests in flight on this worker.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Sends one request and waits for its reply (no timeout). `frame` is a scratch buffer.
    pub async fn call(
        &self,
        id: u64,
        model: u32,
        inputs: InputsRef<'_>,
        frame: &mut Vec<u8>,
    ) -> Reply {
        self.call_within(
            id,
            model,
            inputs,
            frame,
            Duration::from_secs(100 * 365 * 86_400),
        )
        .await
    }

    /// Whether this worker holds `model` (as far as the parent knows).
    pub(crate) fn holds(&self, model: usize) -> bool {
        self.holds
            .lock()
            .expect("holds lock")
            .get(model)
            .copied()
            .unwrap_or(false)
    }

    /// Sends one request and waits for its reply, at most `timeout`. `frame` is a scratch buffer.
    pub(crate) async fn call_within(
        &self,
        id: u64,
        model: u32,
        inputs: InputsRef<'_>,
        frame: &mut Vec<u8>,
        timeout: Duration,
    ) -> Reply {
        if let Some(h) = self
            .holds
            .lock()
            .expect("holds lock")
            .get_mut(model as usize)
        {
            *h = true;
        }
        let msg = ToWorkerRef::Run { id, model, inputs };
        if let Err(e) = protocol::encode_into(&msg, frame) {
            return Reply::Failed(format!("cannot encode request: {e}"));
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        let sent = self.send(frame).await;
        let reply = match sent {
            Err(e) => {
                self.pending.lock().expect("pending lock").remove(&id);
                Reply::Lost(format!("cannot send to worker {}: {e}", self.info.id))
            }
            Ok(()) => match tokio::time::timeout(timeout, rx).await {
                Ok(r) => {
                    r.unwrap_or_else(|_| Reply::Lost(format!("worker {} went away", self.info.id)))
                }
                Err(_) => {
                    self.pending.lock().expect("pending lock").remove(&id);
                    Reply::TimedOut(timeout)
                }
            },
        };
        // A lost request says how the worker ended when it has: "killed by SIGKILL" tells more
        // than the closed connection or "Connection reset by peer" that showed it first.
        let reply = match reply {
            Reply::Lost(why) => Reply::Lost(match self.fate().await {
                Some(fate) => format!("worker {} {fate}", self.info.id),
                None => why,
            }),
            other => other,
        };
        if let Reply::Done(run) = &reply {
            let mut holds = self.holds.lock().expect("holds lock");
            for &e in &run.evicted {
                if let Some(h) = holds.get_mut(e as usize) {
                    *h = false;
                }
            }
        }
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        reply
    }

    /// How the process ended, if it has (waiting a moment: its socket closes as it exits, a little
    /// before the kernel reports the exit); `None` while it runs.
    async fn fate(&self) -> Option<String> {
        if let Some(f) = self.fate.get() {
            return Some(f.clone());
        }
        let mut child = self.child.lock().await;
        let status = tokio::time::timeout(Duration::from_millis(200), child.wait())
            .await
            .ok()?
            .ok()?;
        Some(
            self.fate
                .get_or_init(|| super::fate::describe(status))
                .clone(),
        )
    }

    /// Writes one frame on the worker's channel.
    async fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        send_on(&self.writer, &self.dead, frame).await
    }

    /// Asks the worker to finish, waits for its goodbye (resident memory at the end, requests served)
    /// and reaps it; kills it if it does not exit in time.
    /// Whether the worker's connection has ended.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Kills the process; its pending requests then fail as `worker_lost`.
    pub(crate) async fn kill(&self) {
        let mut child = self.child.lock().await;
        let _ = child.start_kill();
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, child.wait()).await;
    }

    pub(crate) async fn shutdown(self) -> anyhow::Result<(u64, u64)> {
        let id = self.info.id;
        let stderr = self.stderr.clone();
        let mut child = self.child.into_inner();
        let bye_rx = self.bye.lock().expect("bye lock").take();
        let send = async {
            send_on(
                &self.writer,
                &self.dead,
                &protocol::encode(&ToWorker::Shutdown)?,
            )
            .await?;
            self.writer.lock().await.socket.shutdown().await?;
            anyhow::Ok(())
        };
        let result = async {
            send.await?;
            let bye = bye_rx.context("shutdown called twice")?;
            tokio::time::timeout(SHUTDOWN_TIMEOUT, bye)
                .await
                .context("no goodbye in time")?
                .context("connection closed before goodbye")
        }
        .await;
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                self.reader.abort();
                let tail = stderr.lock().expect("stderr lock").clone();
                bail!("worker {id} exited with {status}; stderr:\n{tail}");
            }
            _ => {
                let _ = child.kill().await;
            }
        }
        self.reader.abort();
        result.with_context(|| format!("worker {id} did not shut down cleanly"))
    }
}

/// Starts worker `setup.worker`'s process: `bench worker` (a Python script for the torch runtime,
/// which takes the same flags) with its socket, the `shm` arena's descriptor and, for the `spin`
/// channel, a new channel file (a replacement worker starts clean). Returns the child, the
/// parent's end of the socket and the channel file.
fn spawn_worker(
    setup: &Setup,
    shm_fd: Option<std::os::fd::RawFd>,
) -> anyhow::Result<(
    tokio::process::Child,
    std::os::unix::net::UnixStream,
    Option<Arc<ChannelFile>>,
)> {
    let id = setup.worker;
    let mut args = vec!["worker".to_string(), "--id".into(), id.to_string()];
    let mut inherit: Vec<std::os::fd::RawFd> = Vec::new();
    if let Some(fd) = shm_fd {
        args.extend(["--shm-fd".to_string(), fd.to_string()]);
        inherit.push(fd);
    }
    let channel = match setup.channel {
        Channel::Socket => None,
        Channel::Spin => {
            let file = ChannelFile::create(channel::RING_BYTES)
                .with_context(|| format!("worker {id}: the spin channel"))?;
            args.extend(["--channel-fd".to_string(), file.raw_fd().to_string()]);
            inherit.push(file.raw_fd());
            Some(file)
        }
    };
    let (child, ours) = match setup.runtime {
        Runtime::Torch => {
            let tw = crate::pool::runtime::torch::locate().map_err(anyhow::Error::msg)?;
            let mut py_args = vec![tw.script.display().to_string()];
            py_args.extend(args.into_iter().skip(1));
            spawn(&tw.python, &py_args, Stdio::piped(), &inherit).with_context(|| {
                format!("cannot start torch worker {id} ({})", tw.python.display())
            })?
        }
        Runtime::Ort | Runtime::Tract => spawn_self(&args, Stdio::piped(), &inherit)
            .with_context(|| format!("cannot start worker {id}"))?,
    };
    Ok((child, ours, channel))
}

/// Keeps the last [`STDERR_KEEP`] bytes of the child's stderr, read line by line by a task.
fn keep_stderr(child: &mut tokio::process::Child) -> Arc<Mutex<String>> {
    let stderr = Arc::new(Mutex::new(String::new()));
    if let Some(err) = child.stderr.take() {
        let keep = stderr.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = keep.lock().expect("stderr lock");
                s.push_str(&line);
                s.push('\n');
                if s.len() > STDERR_KEEP {
                    let cut = s.len() - STDERR_KEEP;
                    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                    s.drain(..cut);
                }
            }
        });
    }
    stderr
}

/// What a ready worker reported: each model's load, its resident memory, its runtime's name.
type Ready = (Vec<ModelLoad>, u64, String);

/// The worker's start-up: hello, setup, then ready, raced against the child's exit and
/// [`READY_TIMEOUT`]. An error says whether the worker's stderr should be added to it: a worker
/// that refused its setup says why itself; one that failed without a reason may have written it
/// there (a runtime's own log lines, say).
async fn start_up(
    setup: &Setup,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    child: &mut tokio::process::Child,
) -> Result<Ready, (anyhow::Error, bool)> {
    let id = setup.worker;
    // What a worker's start-up ends in: ready, or a refusal that says why.
    enum Start {
        Ready(Ready),
        Refused(anyhow::Error),
    }
    let handshake = async {
        let mut buf = Vec::new();
        match read_msg(&mut *rd, &mut buf).await? {
            FromWorker::Hello(h) => h.check_for(setup.runtime)?,
            other => bail!("expected a hello, got {other:?}"),
        }
        wr.write_all(&protocol::encode(&ToWorker::Setup(setup.clone()))?)
            .await?;
        match read_msg(&mut *rd, &mut buf).await? {
            FromWorker::Ready {
                loads,
                rss_bytes,
                runtime,
            } => Ok(Start::Ready((loads, rss_bytes, runtime))),
            FromWorker::SetupFailed { model, message } => Ok(Start::Refused(match model {
                Some(m) => anyhow::anyhow!("worker {id} could not load model `{m}`: {message}"),
                None => anyhow::anyhow!("worker {id} failed to set up: {message}"),
            })),
            other => bail!("expected ready, got {other:?}"),
        }
    };
    tokio::pin!(handshake);
    let exited = |status: std::io::Result<std::process::ExitStatus>| {
        anyhow::anyhow!(
            "worker {id} {} during start-up",
            status.map_or_else(|e| format!("ended ({e})"), super::fate::describe)
        )
    };
    let outcome: anyhow::Result<Start> = tokio::select! {
        r = &mut handshake => match r {
            // A closed connection is most often the worker dying: say how, if it did.
            Err(e) => match tokio::time::timeout(Duration::from_millis(200), child.wait()).await {
                Ok(Ok(status)) if std::os::unix::process::ExitStatusExt::signal(&status).is_some() => {
                    Err(exited(Ok(status)))
                }
                Ok(status) => Err(e.context(exited(status))),
                Err(_) => Err(e),
            },
            ok => ok,
        },
        status = child.wait() => {
            // A worker that refuses its setup writes why, then exits at once: the reason is
            // still in the socket, so read it before calling this a bare exit.
            let exited = exited(status);
            match tokio::time::timeout(Duration::from_millis(500), &mut handshake).await {
                Ok(Ok(start)) => Ok(start),
                Ok(Err(_)) | Err(_) => Err(exited),
            }
        }
        _ = tokio::time::sleep(READY_TIMEOUT) => Err(anyhow::anyhow!(
            "worker {id} was not ready after {}s", READY_TIMEOUT.as_secs()
        )),
    };
    match outcome {
        Ok(Start::Ready(ready)) => Ok(ready),
        Ok(Start::Refused(e)) => Err((e, false)),
        Err(e) => Err((e, true)),
    }
}

/// Kills and reaps a worker that did not start, and returns its error, with the tail of its
/// stderr when `with_stderr` and it wrote any.
async fn failed_start(
    id: u32,
    child: &mut tokio::process::Child,
    stderr: &Mutex<String>,
    e: anyhow::Error,
    with_stderr: bool,
) -> anyhow::Error {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    tokio::time::sleep(Duration::from_millis(20)).await; // let the stderr task drain
    let tail = stderr.lock().expect("stderr lock").trim().to_string();
    if tail.is_empty() || !with_stderr {
        e
    } else {
        e.context(format!("worker {id} stderr:\n{tail}"))
    }
}

/// Where requests go: the socket, or the `spin` channel's request ring (the socket then carries
/// only doorbells, and the shutdown's end of stream).
struct Sender {
    socket: OwnedWriteHalf,
    /// Holds the channel's mapping, as the reply reader's end does.
    ring: Option<channel::parent::Requests>,
}

/// Writes one frame on a worker's channel, unless the worker is `dead` while the ring is full.
async fn send_on(
    writer: &tokio::sync::Mutex<Sender>,
    dead: &std::sync::atomic::AtomicBool,
    frame: &[u8],
) -> std::io::Result<()> {
    let mut sender = writer.lock().await;
    let Sender { socket, ring, .. } = &mut *sender;
    match ring {
        None => socket.write_all(frame).await,
        Some(ring) => {
            let dead = || dead.load(Ordering::Relaxed);
            ring.write_all(frame, socket, &dead).await
        }
    }
}

/// Where replies come from.
enum Replies {
    Socket(tokio::io::BufReader<OwnedReadHalf>),
    /// The reply ring, the socket for doorbells and the worker's end, and the requests in flight:
    /// the reader spins only while some are.
    Spin {
        replies: channel::parent::Replies,
        socket: OwnedReadHalf,
        outstanding: Arc<AtomicUsize>,
    },
}

impl Replies {
    /// Reads one frame's payload into `buf`; `Ok(false)` at a clean end before a frame.
    async fn next(&mut self, buf: &mut Vec<u8>) -> Result<bool, ProtocolError> {
        match self {
            Replies::Socket(rd) => protocol::read_frame_async(rd, buf).await,
            Replies::Spin {
                replies,
                socket,
                outstanding,
            } => {
                let spin = || outstanding.load(Ordering::Relaxed) > 0;
                let mut header = [0u8; 4];
                if !replies.read_exact(&mut header, socket, &spin).await? {
                    return Ok(false);
                }
                let len = protocol::frame_len(header)?;
                buf.clear();
                buf.resize(len, 0);
                if !replies.read_exact(buf, socket, &spin).await? {
                    return Err(ProtocolError::Truncated {
                        expected: len,
                        got: 0,
                    });
                }
                Ok(true)
            }
        }
    }
}

async fn read_msg(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> anyhow::Result<FromWorker> {
    if !protocol::read_frame_async(rd, buf).await? {
        bail!("the worker closed its connection");
    }
    Ok(protocol::decode(buf)?)
}

/// Completes pending requests as replies arrive; when the connection ends, fails the rest.
async fn read_replies(
    mut source: Replies,
    pending: Pending,
    bye: oneshot::Sender<(u64, u64)>,
    dead: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut buf = Vec::with_capacity(1 << 16);
    let mut bye = Some(bye);
    let reason = loop {
        match source.next(&mut buf).await {
            Ok(true) => {}
            Ok(false) => break "the worker closed its connection".to_string(),
            Err(e) => break format!("protocol error: {e}"),
        }
        let (id, reply) = match protocol::decode::<FromWorker>(&buf) {
            Ok(FromWorker::Done { id, run }) => (id, Reply::Done(run)),
            Ok(FromWorker::Failed { id, message }) => (id, Reply::Failed(message)),
            Ok(FromWorker::Bye { rss_bytes, served }) => {
                if let Some(tx) = bye.take() {
                    let _ = tx.send((rss_bytes, served));
                }
                continue;
            }
            Ok(other) => break format!("unexpected message {other:?}"),
            Err(e) => break format!("protocol error: {e}"),
        };
        if let Some(tx) = pending.lock().expect("pending lock").remove(&id) {
            let _ = tx.send(reply);
        }
    };
    dead.store(true, Ordering::Relaxed);
    let waiting: Vec<_> = pending.lock().expect("pending lock").drain().collect();
    for (_, tx) in waiting {
        let _ = tx.send(Reply::Lost(reason.clone()));
    }
}

/// All workers of one sweep point, replaced when they die or hang.
///
/// The pool lives on the parent's single thread: workers are shared as `Rc`, so a worker replaced
/// while requests are in flight on it stays alive until they have failed.
pub struct Pool {
    workers: std::cell::RefCell<Vec<std::rc::Rc<Worker>>>,
    setups: Vec<Setup>,
    /// The `shm` transfer's slots.
    pub slots: Option<SlotPool>,
    policy: Supervision,
    restarting: std::cell::RefCell<Vec<bool>>,
    timeouts: std::cell::RefCell<Vec<u32>>,
    /// Workers replaced, and the slowest replacement (spawn to ready).
    pub(crate) restarts: std::cell::Cell<u64>,
    pub(crate) restart_max: std::cell::Cell<Duration>,
    /// (worker pid, model, sample) whose outputs were checked against the expected ones: each
    /// worker's first run of each sample is checked once per point, whichever phase it falls in.
    pub(crate) checked: std::cell::RefCell<std::collections::HashSet<(u32, usize, usize)>>,
    /// On-demand placement: when the parent learned that (worker pid, model) loaded the model, to
    /// tell each evicted model's age.
    pub(crate) loaded_at: std::cell::RefCell<HashMap<(u32, usize), Instant>>,
    /// On-demand placement: permits to load a model, one per worker that may load at the same
    /// time (`[on_demand] parallel_loads`); `None` puts no limit.
    pub(crate) load_permits: Option<tokio::sync::Semaphore>,
}

/// How the pool treats failing workers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Supervision {
    /// A request without an answer by then fails as `timeout`.
    pub(crate) request_timeout: Duration,
    /// After this many timeouts in a row, the worker is killed and replaced.
    pub(crate) replace_after_timeouts: u32,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            request_timeout: Duration::from_secs(60),
            replace_after_timeouts: 3,
        }
    }
}

impl Pool {
    /// Starts one worker per setup, concurrently; if any fails, the others are stopped and the first
    /// error is returned.
    pub async fn start(setups: Vec<Setup>, slots: Option<SlotPool>) -> anyhow::Result<Pool> {
        Pool::start_with(setups, slots, Supervision::default()).await
    }

    pub(crate) async fn start_with(
        setups: Vec<Setup>,
        slots: Option<SlotPool>,
        policy: Supervision,
    ) -> anyhow::Result<Pool> {
        let fd = slots.as_ref().map(|s| s.fd.raw_fd());
        let results =
            futures::future::join_all(setups.iter().cloned().map(|s| Worker::start(s, fd))).await;
        let mut workers = Vec::new();
        let mut first_err = None;
        for r in results {
            match r {
                Ok(w) => workers.push(w),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            for w in workers {
                let _ = w.shutdown().await;
            }
            return Err(e);
        }
        let n = workers.len();
        Ok(Pool {
            workers: std::cell::RefCell::new(workers.into_iter().map(std::rc::Rc::new).collect()),
            setups,
            slots,
            policy,
            restarting: std::cell::RefCell::new(vec![false; n]),
            timeouts: std::cell::RefCell::new(vec![0; n]),
            restarts: std::cell::Cell::new(0),
            restart_max: std::cell::Cell::new(Duration::ZERO),
            checked: Default::default(),
            loaded_at: Default::default(),
            load_permits: None,
        })
    }

    /// A pool of already started workers (no restarts possible).
    pub(crate) fn of(workers: Vec<Worker>) -> Pool {
        let n = workers.len();
        Pool {
            workers: std::cell::RefCell::new(workers.into_iter().map(std::rc::Rc::new).collect()),
            setups: Vec::new(),
            slots: None,
            policy: Supervision::default(),
            restarting: std::cell::RefCell::new(vec![false; n]),
            timeouts: std::cell::RefCell::new(vec![0; n]),
            restarts: std::cell::Cell::new(0),
            restart_max: std::cell::Cell::new(Duration::ZERO),
            checked: Default::default(),
            loaded_at: Default::default(),
            load_permits: None,
        }
    }

    /// On-demand placement: lets at most `n` workers load a model at the same time; a request that
    /// will make its worker load waits for a permit, and that wait counts in its service time.
    pub(crate) fn limit_parallel_loads(&mut self, n: usize) {
        self.load_permits = Some(tokio::sync::Semaphore::new(n.max(1)));
    }

    pub(crate) fn policy(&self) -> Supervision {
        self.policy
    }

    /// Whether any worker is alive.
    /// Whether a live worker that holds `model` could start a run now: fewer requests in flight
    /// than it runs at once (dynamic batching's `send` policy sends a batch at once then).
    pub(crate) fn idle_holder(&self, model: usize) -> bool {
        self.workers
            .borrow()
            .iter()
            .any(|w| !w.is_dead() && w.holds(model) && w.outstanding() < w.concurrency)
    }

    pub(crate) fn any_alive(&self) -> bool {
        self.workers.borrow().iter().any(|w| !w.is_dead())
    }

    /// What each current worker reported when it became ready.
    pub fn infos(&self) -> Vec<WorkerInfo> {
        self.workers
            .borrow()
            .iter()
            .map(|w| w.info.clone())
            .collect()
    }

    /// The current worker number `i`.
    pub(crate) fn worker(&self, i: usize) -> std::rc::Rc<Worker> {
        self.workers.borrow()[i].clone()
    }

    /// The worker for a request to `model`: among the live workers that hold it, the one with the
    /// fewest requests in flight (ties go to the first at or after `hint`). When none holds it
    /// (on-demand placement), the least loaded live worker, which will load it.
    pub fn pick(&self, model: usize, hint: usize) -> std::rc::Rc<Worker> {
        let workers = self.workers.borrow();
        let n = workers.len();
        let order = || (0..n).map(|k| &workers[(hint + k) % n]);
        order()
            .filter(|w| !w.is_dead() && w.holds(model))
            .min_by_key(|w| w.outstanding())
            .or_else(|| {
                order()
                    .filter(|w| !w.is_dead())
                    .min_by_key(|w| w.outstanding())
            })
            .or_else(|| order().next())
            .expect("a pool has at least one worker")
            .clone()
    }

    /// Notes how a request to worker `id` ended; replaces the worker when it died or has timed out
    /// too often in a row. Returns once any replacement is ready (or has failed).
    pub(crate) async fn after_reply(&self, id: usize, reply: &Reply) {
        let replace = match reply {
            Reply::Lost(_) => true,
            Reply::TimedOut(_) => {
                let mut t = self.timeouts.borrow_mut();
                t[id] += 1;
                t[id] >= self.policy.replace_after_timeouts
            }
            _ => {
                self.timeouts.borrow_mut()[id] = 0;
                false
            }
        };
        if replace {
            self.replace(id).await;
        }
    }

    /// Replaces every worker whose connection has ended, also those that died with no request in
    /// flight (so no reply reported it). Cheap when all are alive.
    pub(crate) async fn heal(&self) {
        let dead: Vec<usize> = {
            let workers = self.workers.borrow();
            let restarting = self.restarting.borrow();
            (0..workers.len())
                .filter(|&i| workers[i].is_dead() && !restarting[i])
                .collect()
        };
        for id in dead {
            self.replace(id).await;
        }
    }

    /// Kills worker `id` and starts a new one with the same setup (once, however many requests
    /// notice the failure at the same time).
    async fn replace(&self, id: usize) {
        if self.setups.is_empty() || std::mem::replace(&mut self.restarting.borrow_mut()[id], true)
        {
            return;
        }
        let old = self.worker(id);
        old.kill().await;
        let started = Instant::now();
        let fd = self.slots.as_ref().map(|s| s.fd.raw_fd());
        // A replacement can itself die while starting (a soak test kills workers at random): try a
        // few times before leaving the slot dead, which requests then avoid.
        for attempt in 0..5u32 {
            if let Ok(new) = Worker::start(self.setups[id].clone(), fd).await {
                self.workers.borrow_mut()[id] = std::rc::Rc::new(new);
                self.timeouts.borrow_mut()[id] = 0;
                self.restarts.set(self.restarts.get() + 1);
                self.restart_max
                    .set(self.restart_max.get().max(started.elapsed()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        self.restarting.borrow_mut()[id] = false;
    }

    /// Shuts every worker down; returns (resident bytes at the end, requests served) per worker.
    pub async fn shutdown(self) -> Vec<anyhow::Result<(u64, u64)>> {
        let workers = self.workers.into_inner();
        futures::future::join_all(workers.into_iter().map(|w| async move {
            match std::rc::Rc::try_unwrap(w) {
                Ok(w) => w.shutdown().await,
                Err(w) => {
                    w.kill().await;
                    anyhow::bail!(
                        "worker {} was still in use at shutdown and was killed",
                        w.info.id
                    )
                }
            }
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensor::{DType, TensorData};
    use crate::pool::transfer::shm::TensorPlacement;

    #[test]
    fn borrowed_run_encodes_like_the_owned_message() {
        let inputs = vec![TensorData {
            dtype: DType::F32,
            shape: vec![1, 2],
            bytes: vec![0, 0, 128, 63, 0, 0, 0, 64],
        }];
        let owned = protocol::encode(&ToWorker::Run {
            id: 7,
            model: 2,
            inputs: protocol::Inputs::Inline(inputs.clone()),
        })
        .unwrap();
        let borrowed = protocol::encode(&ToWorkerRef::Run {
            id: 7,
            model: 2,
            inputs: InputsRef::Inline(&inputs),
        })
        .unwrap();
        assert_eq!(owned, borrowed);
        let placements = vec![TensorPlacement {
            dtype: DType::I64,
            shape: vec![2],
            offset: 64,
            len: 16,
        }];
        let owned = protocol::encode(&ToWorker::Run {
            id: 1,
            model: 0,
            inputs: protocol::Inputs::Shm {
                slot: 3,
                tensors: placements.clone(),
            },
        })
        .unwrap();
        let borrowed = protocol::encode(&ToWorkerRef::Run {
            id: 1,
            model: 0,
            inputs: InputsRef::Shm {
                slot: 3,
                tensors: &placements,
            },
        })
        .unwrap();
        assert_eq!(owned, borrowed);
        let owned = protocol::encode(&ToWorker::Run {
            id: 1,
            model: 0,
            inputs: protocol::Inputs::Index(5),
        })
        .unwrap();
        let borrowed = protocol::encode(&ToWorkerRef::Run {
            id: 1,
            model: 0,
            inputs: InputsRef::Index(5),
        })
        .unwrap();
        assert_eq!(owned, borrowed);
        let owned = protocol::encode(&ToWorker::Run {
            id: 1,
            model: 0,
            inputs: protocol::Inputs::Batch {
                samples: vec![3, 4, 5],
                axes: vec![(0, 0), (2, 1)],
            },
        })
        .unwrap();
        let borrowed = protocol::encode(&ToWorkerRef::Run {
            id: 1,
            model: 0,
            inputs: InputsRef::Batch {
                samples: &[3, 4, 5],
                axes: &[(0, 0), (2, 1)],
            },
        })
        .unwrap();
        assert_eq!(owned, borrowed);
    }
}
