//! The worker's side: handshake, load the models named in the setup, then answer run requests until
//! told to shut down or until the parent goes away: one at a time, in the order they came, or with
//! `worker_concurrency` k above 1, k at a time from k threads that share the loaded models (one
//! session per model, not one per thread). Replies then leave in the order runs finish; each
//! carries its request's id, and the parent matches them by id.
//!
//! Each reply is flushed as soon as it is written: a reply held back to share a system call with
//! the next one would wait for that request's whole compute time.

use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;

use crate::model::tensor::TensorData;
use crate::pool::protocol::{
    self, Finished, FromWorker, Hello, Inputs, ModelLoad, ProtocolError, Setup, ToWorker,
};
use crate::pool::runtime::{self, Model, SharedRun};
use crate::pool::transfer::channel::ChannelFile;
use crate::pool::transfer::{Input, ModelInputs, Resolver};
use crate::scenario::{Channel, ModelSource};

/// Resident memory of this process, in bytes (0 when unknown).
pub(crate) fn rss_bytes() -> u64 {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem as u64)
}

/// One model slot of the worker: loaded or not, and its cost.
struct Held {
    model: Box<dyn Model>,
    has_run: bool,
    /// Resident-memory growth when it loaded: its cost against an on-demand memory budget.
    cost_bytes: u64,
}

/// The worker's models, loaded at start or on demand, with least-recently-used eviction.
struct Store<'a> {
    setup: &'a Setup,
    held: Vec<Option<Held>>,
    /// Model indices from least to most recently used.
    lru: Vec<usize>,
    /// Each model's memory cost, fixed at its first load (a reload often reuses freed memory and
    /// would look free).
    costs: Vec<Option<u64>>,
}

impl Store<'_> {
    /// Loads model `m`, handing it `stage` (the `device` transfer's samples) to keep on its device.
    fn load(&mut self, m: usize, stage: Option<&[Vec<TensorData>]>) -> Result<u64, String> {
        let spec = self
            .setup
            .models
            .get(m)
            .ok_or_else(|| format!("no model #{m}"))?;
        let rss0 = rss_bytes();
        let t0 = Instant::now();
        let mut model = runtime::load(self.setup, m)?;
        if let Some(samples) = stage {
            model.stage(samples)?;
        }
        let load_ns = t0.elapsed().as_nanos() as u64;
        // Its cost against a memory budget: the resident-memory growth of its first load, and at
        // least the size of its file.
        let file_bytes = match &spec.source {
            ModelSource::Onnx(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            ModelSource::Synthetic(_) => 0,
        };
        let grown = rss_bytes().saturating_sub(rss0);
        let cost_bytes = *self.costs[m].get_or_insert(grown.max(file_bytes));
        self.held[m] = Some(Held {
            model,
            has_run: false,
            cost_bytes,
        });
        self.touch(m);
        Ok(load_ns)
    }

    fn touch(&mut self, m: usize) {
        self.lru.retain(|&x| x != m);
        self.lru.push(m);
    }

    /// Evicts least recently used models (never `keep`) until the on-demand caps hold.
    fn evict_for(&mut self, keep: usize) -> Vec<u32> {
        let Some(caps) = self.setup.on_demand else {
            return Vec::new();
        };
        let mut evicted = Vec::new();
        loop {
            let count = self.lru.len();
            let bytes: u64 = self.held.iter().flatten().map(|h| h.cost_bytes).sum();
            let over = caps.max_models.is_some_and(|n| count > n)
                || caps.memory_budget_bytes.is_some_and(|b| bytes > b);
            let Some(&victim) = self.lru.iter().find(|&&x| x != keep) else {
                break;
            };
            if !over {
                break;
            }
            self.held[victim] = None;
            self.lru.retain(|&x| x != victim);
            evicted.push(victim as u32);
        }
        evicted
    }
}

fn pin_to(cpu: u32) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs the worker on the socket inherited as file descriptor `fd`, with the shared-memory arena
/// inherited as `shm_fd` for the `shm` transfer and the `spin` channel's file as `channel_fd`.
pub(crate) fn main(fd: i32, shm_fd: Option<i32>, channel_fd: Option<i32>) -> anyhow::Result<()> {
    // SAFETY: the parent passes the number of a socket it created for this process alone; nothing
    // else in this process owns that descriptor.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut reader = BufReader::with_capacity(1 << 16, stream.try_clone().context("socket")?);
    let mut writer = BufWriter::with_capacity(1 << 16, stream);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    protocol::write_msg(&mut writer, &FromWorker::Hello(Hello::ours()), &mut out)?;
    writer.flush()?;

    if !protocol::read_frame(&mut reader, &mut buf)? {
        return Ok(()); // parent went away before setup
    }
    let setup = match protocol::decode::<ToWorker>(&buf)? {
        ToWorker::Setup(s) => s,
        other => return Err(ProtocolError::Unexpected(format!("{other:?} before setup")).into()),
    };
    let ready = match set_up(&setup, shm_fd, channel_fd) {
        Ok(ready) => ready,
        Err((model, message)) => {
            protocol::write_msg(
                &mut writer,
                &FromWorker::SetupFailed { model, message },
                &mut out,
            )?;
            writer.flush()?;
            return Ok(());
        }
    };
    let SetUp {
        channel,
        resolver,
        store,
        loads,
        runtime,
        concurrency,
    } = ready;
    let ready = FromWorker::Ready {
        loads,
        rss_bytes: rss_bytes(),
        runtime,
    };
    protocol::write_msg(&mut writer, &ready, &mut out)?;
    writer.flush()?;
    match channel {
        None => serve_all(reader, writer, store, resolver, concurrency),
        Some(file) => {
            // From here the socket carries only doorbells: its end tells that the parent is gone.
            let socket = writer.into_inner().map_err(|e| e.into_error())?;
            let spin = std::time::Duration::from_nanos(setup.spin_max_ns);
            let (reader, writer) = file.worker_ends(socket, spin).context("socket")?;
            serve_all(reader, writer, store, resolver, concurrency)
        }
    }
}

/// A worker set up as its `Setup` says, ready to serve.
struct SetUp<'s> {
    /// The `spin` channel's file, for that channel.
    channel: Option<std::sync::Arc<ChannelFile>>,
    resolver: Resolver,
    store: Store<'s>,
    /// The models loaded at start.
    loads: Vec<ModelLoad>,
    /// The runtime's name and version.
    runtime: String,
    /// Requests run at once.
    concurrency: usize,
}

/// Why a worker refuses its setup: the model at fault, if one is, and the reason. The parent
/// shows it as the worker's own error.
type Refusal = (Option<String>, String);

/// Sets the worker up: the runtime's own checks, the `spin` channel's file, the CPU pin, the
/// transfer mode's side (the shm arena mapped, or the index samples made here from the same seeds
/// as the parent), the models to load at start, the runtime started.
fn set_up(
    setup: &Setup,
    shm_fd: Option<i32>,
    channel_fd: Option<i32>,
) -> Result<SetUp<'_>, Refusal> {
    if let Some(why) = runtime::refuse(setup) {
        return Err((None, why));
    }
    let channel = match (setup.channel, channel_fd) {
        (Channel::Socket, _) => None,
        (Channel::Spin, None) => {
            return Err((
                None,
                "the spin channel needs its file (--channel-fd)".into(),
            ));
        }
        // SAFETY: the parent passed this descriptor number to this process alone.
        (Channel::Spin, Some(fd)) => Some(
            ChannelFile::open(unsafe { OwnedFd::from_raw_fd(fd) })
                .map_err(|e| (None, e.to_string()))?,
        ),
    };
    if let Some(cpu) = setup.pin_cpu
        && let Err(e) = pin_to(cpu)
    {
        return Err((None, format!("cannot pin to CPU {cpu}: {e}")));
    }
    let models = setup.models.iter().map(|m| ModelInputs {
        name: &m.name,
        inputs: &m.inputs,
        samples: m.samples as usize,
    });
    let resolver = Resolver::open(setup.transfer, setup.shm, shm_fd, models)
        .map_err(|e| (e.model().map(str::to_string), e.to_string()))?;
    let mut store = Store {
        setup,
        held: (0..setup.models.len()).map(|_| None).collect(),
        lru: Vec::new(),
        costs: vec![None; setup.models.len()],
    };
    let mut loads = Vec::new();
    for &m in &setup.preload {
        let model = &setup.models[m as usize].name;
        let load_ns = store
            .load(m as usize, resolver.to_stage(m as usize))
            .map_err(|message| (Some(model.clone()), message))?;
        loads.push(ModelLoad {
            model: model.clone(),
            load_ns,
            rss_bytes: store.costs[m as usize].unwrap_or(0),
        });
    }
    let runtime = runtime::start(setup).map_err(|message| (None, message))?;
    let concurrency = setup.worker_concurrency.max(1) as usize;
    if concurrency > 1 {
        shared_runs(&store).map_err(|why| (None, why))?;
    }
    Ok(SetUp {
        channel,
        resolver,
        store,
        loads,
        runtime,
        concurrency,
    })
}

/// Answers requests from `reader` on `writer` until told to shut down or until the stream ends:
/// one at a time, or `concurrency` at a time from as many threads.
fn serve_all<R: Read, W: Write + Send>(
    mut reader: R,
    mut writer: W,
    mut store: Store,
    mut resolver: Resolver,
    concurrency: usize,
) -> anyhow::Result<()> {
    if concurrency > 1 {
        let runs = shared_runs(&store).map_err(anyhow::Error::msg)?;
        return serve_concurrently(
            &mut reader,
            writer,
            store.setup,
            &runs,
            &resolver,
            concurrency,
        );
    }
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut served = 0u64;
    while protocol::read_frame(&mut reader, &mut buf)? {
        match protocol::decode::<ToWorker>(&buf)? {
            ToWorker::Run { id, model, inputs } => {
                served += 1;
                let reply = match serve(&mut store, &mut resolver, model as usize, &inputs) {
                    Ok(run) => FromWorker::Done { id, run },
                    Err(message) => FromWorker::Failed { id, message },
                };
                // Every reply leaves at once: holding it back to batch with the next one would add
                // that request's whole compute time to this one's latency.
                protocol::write_msg(&mut writer, &reply, &mut out)?;
                writer.flush()?;
            }
            ToWorker::Shutdown => {
                let bye = FromWorker::Bye {
                    rss_bytes: rss_bytes(),
                    served,
                };
                protocol::write_msg(&mut writer, &bye, &mut out)?;
                writer.flush()?;
                return Ok(());
            }
            ToWorker::Setup(_) => {
                return Err(ProtocolError::Unexpected("a second setup".into()).into());
            }
        }
    }
    Ok(())
}

/// Each model's run that threads share (`None` where the model is not loaded here), for
/// `worker_concurrency` above 1; an error says which model's runtime runs one request at a time.
/// On-demand placement is refused before (it loads and evicts while serving).
fn shared_runs<'s>(store: &'s Store) -> Result<Vec<Option<&'s dyn SharedRun>>, String> {
    if store.setup.on_demand.is_some() {
        return Err(
            "worker_concurrency above 1 needs the models loaded at start, not on demand".into(),
        );
    }
    store
        .held
        .iter()
        .enumerate()
        .map(|(m, held)| match held {
            None => Ok(None),
            Some(h) => h.model.shared().map(Some).ok_or_else(|| {
                format!(
                    "model `{}`: this runtime runs one request at a time per worker; set \
                     worker_concurrency = 1",
                    store.setup.models[m].name
                )
            }),
        })
        .collect()
}

/// A run request handed to a serving thread.
type Job = (u64, u32, Inputs);

/// Serves requests `threads` at a time: this thread reads the requests and hands them to
/// `threads` threads, which run them on the shared models and write their own replies, in the
/// order they finish. On shutdown it waits for every request it read, then says goodbye.
fn serve_concurrently<W: Write + Send>(
    reader: &mut impl Read,
    writer: W,
    setup: &Setup,
    runs: &[Option<&dyn SharedRun>],
    resolver: &Resolver,
    threads: usize,
) -> anyhow::Result<()> {
    let first: Vec<AtomicBool> = runs.iter().map(|_| AtomicBool::new(false)).collect();
    let served = AtomicU64::new(0);
    let writer = Mutex::new((writer, Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Mutex::new(rx);
    let read = std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    // The lock is held only to take the next request, never while running it.
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((id, model, inputs)) = job else {
                        return; // no more requests
                    };
                    served.fetch_add(1, Ordering::Relaxed);
                    let reply = match serve_shared(
                        setup,
                        runs,
                        &first,
                        resolver,
                        model as usize,
                        &inputs,
                    ) {
                        Ok(run) => FromWorker::Done { id, run },
                        Err(message) => FromWorker::Failed { id, message },
                    };
                    let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
                    let (w, out) = &mut *w;
                    if protocol::write_msg(w, &reply, out).is_err() || w.flush().is_err() {
                        return; // the parent went away; the reader sees it too
                    }
                }
            });
        }
        // Dropping the sender (at the end of this closure, however it ends) lets every serving
        // thread finish the requests it has and stop, so the scope can end.
        let tx = tx;
        let mut buf = Vec::new();
        loop {
            if !protocol::read_frame(reader, &mut buf)? {
                return anyhow::Ok(false);
            }
            match protocol::decode::<ToWorker>(&buf)? {
                ToWorker::Run { id, model, inputs } => {
                    if tx.send((id, model, inputs)).is_err() {
                        return Ok(false); // every serving thread stopped: the parent is gone
                    }
                }
                ToWorker::Shutdown => return Ok(true),
                ToWorker::Setup(_) => {
                    return Err(ProtocolError::Unexpected("a second setup".into()).into());
                }
            }
        }
    })?;
    if read {
        let (mut w, mut out) = writer.into_inner().unwrap_or_else(|p| p.into_inner());
        let bye = FromWorker::Bye {
            rss_bytes: rss_bytes(),
            served: served.load(Ordering::Relaxed),
        };
        protocol::write_msg(&mut w, &bye, &mut out)?;
        w.flush()?;
    }
    Ok(())
}

/// Runs one request on a shared model from a serving thread: as [`serve`], without on-demand
/// loads (refused with `worker_concurrency` above 1).
fn serve_shared(
    setup: &Setup,
    runs: &[Option<&dyn SharedRun>],
    first: &[AtomicBool],
    resolver: &Resolver,
    m: usize,
    inputs: &Inputs,
) -> Result<Finished, String> {
    let run = runs
        .get(m)
        .ok_or_else(|| format!("no model #{m} in this scenario"))?
        .ok_or_else(|| {
            format!(
                "model `{}` is not placed on this worker",
                setup.models[m].name
            )
        })?;
    if let Some(pause) = run.pause_before_shared() {
        std::thread::sleep(pause);
    }
    let mut compute_ns = 0;
    let mut first_run = false;
    let outputs = resolver.serve_shared(m, inputs, |input| {
        let t0 = Instant::now();
        let result = match input {
            Input::Views(views) => run.run_shared(views),
            Input::Staged(_) => {
                Err("the device transfer runs one request per worker at a time".to_string())
            }
        };
        compute_ns = t0.elapsed().as_nanos() as u64;
        if result.is_ok() {
            first_run = !first[m].swap(true, Ordering::Relaxed);
        }
        result
    })?;
    Ok(Finished {
        compute_ns,
        first: first_run,
        cold_load_ns: None,
        evicted: Vec::new(),
        outputs,
    })
}

/// Runs one request: loads the model first if the placement is on-demand, and lets the transfer
/// mode hand the runtime the inputs wherever they are and return the outputs the way they came.
fn serve(
    store: &mut Store,
    resolver: &mut Resolver,
    m: usize,
    inputs: &Inputs,
) -> Result<Finished, String> {
    if m >= store.held.len() {
        return Err(format!("no model #{m} in this scenario"));
    }
    let (cold_load_ns, evicted) = if store.held[m].is_none() {
        if store.setup.on_demand.is_none() {
            return Err(format!(
                "model `{}` is not placed on this worker",
                store.setup.models[m].name
            ));
        }
        let load_ns = store.load(m, resolver.to_stage(m))?;
        (Some(load_ns), store.evict_for(m))
    } else {
        store.touch(m);
        (None, Vec::new())
    };
    let held = store.held[m].as_mut().expect("loaded above");
    if let Some(pause) = held.model.pause_before() {
        std::thread::sleep(pause);
    }
    let mut compute_ns = 0;
    let mut first = false;
    let outputs = resolver.serve(m, inputs, |input| {
        let t0 = Instant::now();
        let result = match input {
            Input::Views(views) => held.model.run(views),
            Input::Staged(k) => held.model.run_staged(k),
        };
        compute_ns = t0.elapsed().as_nanos() as u64;
        if result.is_ok() {
            first = !std::mem::replace(&mut held.has_run, true);
        }
        result
    })?;
    Ok(Finished {
        compute_ns,
        first,
        cold_load_ns,
        evicted,
        outputs,
    })
}

/// The bare round-trip peer used by `bench calibrate`: echoes fixed-size messages back until the
/// connection closes. It does nothing else, so its round trip is the floor any worker pays. With
/// `channel_fd` it echoes through the `spin` channel, spinning up to [`ECHO_SPIN`] between
/// messages.
pub(crate) fn echo_main(fd: i32, size: usize, channel_fd: Option<i32>) -> anyhow::Result<()> {
    // SAFETY: as in `main`, the descriptor was created by the parent for this process alone.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    match channel_fd {
        None => echo(stream.try_clone()?, stream, size),
        Some(cfd) => {
            // SAFETY: as above, for the channel's file.
            let file = ChannelFile::open(unsafe { OwnedFd::from_raw_fd(cfd) })?;
            let (reader, writer) = file.worker_ends(stream, ECHO_SPIN)?;
            echo(reader, writer, size)
        }
    }
}

/// How long the `spin` echo peer spins for the next message.
pub(crate) const ECHO_SPIN: std::time::Duration = std::time::Duration::from_millis(1);

fn echo(mut r: impl Read, mut w: impl Write, size: usize) -> anyhow::Result<()> {
    let mut buf = vec![0u8; size.max(1)];
    loop {
        match r.read_exact(&mut buf) {
            Ok(()) => w.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_restricts_the_thread_to_one_cpu() {
        std::thread::spawn(|| {
            pin_to(0).unwrap();
            // SAFETY: cpu_set_t is plain data filled by sched_getaffinity.
            let set = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(
                    libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                    0
                );
                set
            };
            // SAFETY: CPU_ISSET and CPU_COUNT only read the set.
            unsafe {
                assert!(libc::CPU_ISSET(0, &set));
                assert_eq!(libc::CPU_COUNT(&set), 1);
            }
        })
        .join()
        .unwrap();
    }
}
