//! The worker's side: handshake, load the models named in the setup, then answer run requests one at
//! a time until told to shut down or until the parent goes away.
//!
//! Each reply is flushed as soon as it is written: a reply held back to share a system call with
//! the next one would wait for that request's whole compute time.

use std::io::{BufReader, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use anyhow::Context;

use crate::protocol::{self, FromWorker, Hello, ModelLoad, ProtocolError, ToWorker};
use crate::runtime::{self, Model};
use crate::scenario::ModelSource;

/// Resident memory of this process, in bytes (0 when unknown).
pub fn rss_bytes() -> u64 {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem as u64)
}

/// Runs the worker on the socket inherited as file descriptor `fd`.
pub fn main(fd: i32) -> anyhow::Result<()> {
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
    let opts = runtime::ort::SessionOptions {
        intra_threads: setup.intra_threads as usize,
    };
    let mut models: Vec<Box<dyn Model>> = Vec::new();
    let mut loads = Vec::new();
    for (i, m) in setup.models.iter().enumerate() {
        let t0 = Instant::now();
        let loaded: Result<Box<dyn Model>, String> = match &m.source {
            ModelSource::Onnx(path) => {
                runtime::ort::OrtModel::load(&setup.ort_lib, path, opts).map(|m| Box::new(m) as _)
            }
            ModelSource::Synthetic(spec) => {
                let seed = u64::from(setup.worker) << 32 | i as u64;
                Ok(Box::new(runtime::synthetic::SyntheticModel::new(
                    *spec, seed,
                )))
            }
        };
        match loaded {
            Ok(model) => models.push(model),
            Err(message) => {
                let reply = FromWorker::SetupFailed {
                    model: Some(m.name.clone()),
                    message,
                };
                protocol::write_msg(&mut writer, &reply, &mut out)?;
                writer.flush()?;
                return Ok(());
            }
        }
        loads.push(ModelLoad {
            model: m.name.clone(),
            load_ns: t0.elapsed().as_nanos() as u64,
        });
    }
    let mut has_run = vec![false; models.len()];
    let ready = FromWorker::Ready {
        loads,
        rss_bytes: rss_bytes(),
        runtime: if setup
            .models
            .iter()
            .any(|m| matches!(m.source, ModelSource::Onnx(_)))
        {
            runtime::ort::build_info()
        } else {
            "synthetic".into()
        },
    };
    protocol::write_msg(&mut writer, &ready, &mut out)?;
    writer.flush()?;

    let mut served = 0u64;
    while protocol::read_frame(&mut reader, &mut buf)? {
        match protocol::decode::<ToWorker>(&buf)? {
            ToWorker::Run { id, model, inputs } => {
                let reply = match models.get_mut(model as usize) {
                    None => FromWorker::Failed {
                        id,
                        message: format!("no model #{model} in this worker"),
                    },
                    Some(m) => {
                        if let Some(pause) = m.pause_before() {
                            std::thread::sleep(pause);
                        }
                        let t0 = Instant::now();
                        let result = m.run(&inputs);
                        let compute_ns = t0.elapsed().as_nanos() as u64;
                        let first = !std::mem::replace(&mut has_run[model as usize], true);
                        match result {
                            Ok(outputs) => FromWorker::Done {
                                id,
                                compute_ns,
                                first,
                                outputs,
                            },
                            Err(message) => FromWorker::Failed { id, message },
                        }
                    }
                };
                served += 1;
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

/// The bare round-trip peer used by `bench calibrate`: echoes fixed-size messages back until the
/// connection closes. It does nothing else, so its round trip is the floor any worker pays.
pub fn echo_main(fd: i32, size: usize) -> anyhow::Result<()> {
    use std::io::Read;
    // SAFETY: as in `main`, the descriptor was created by the parent for this process alone.
    let mut stream = unsafe { UnixStream::from_raw_fd(fd) };
    let mut buf = vec![0u8; size.max(1)];
    loop {
        match stream.read_exact(&mut buf) {
            Ok(()) => stream.write_all(&buf)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
