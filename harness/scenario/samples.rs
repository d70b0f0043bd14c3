//! The samples a model is fed: each input's seed, the samples generated from the inputs'
//! generators (or read from their files), and the limits on the memory they take.
//!
//! Resolving a model generates its samples once, so a bad input file is reported before any
//! worker starts; a batch point generates them again at its own shape
//! ([`ModelSpec::at_batch`](super::ModelSpec::at_batch)), and a worker of the `index` transfer
//! makes the same bytes from the same seeds.

use sha2::Digest;

use super::spec::{InputSpec, ModelSpec};
use crate::model::tensor::{self, Generator, TensorData};
use crate::model::testdata;

/// The largest single sample (all inputs of one model) the parent will generate: 1 GiB.
pub(crate) const MAX_SAMPLE_BYTES: usize = 1 << 30;
/// The most memory all generated samples of one model may take: 4 GiB.
pub(crate) const MAX_SAMPLES_BYTES: usize = 4 << 30;

/// A seed for one input, derived from the scenario seed and the model and input names, so adding a
/// model does not change the data of the others.
pub(crate) fn input_seed(seed: u64, model: &str, input: &str) -> u64 {
    let mut h = sha2::Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(model.as_bytes());
    h.update([0]);
    h.update(input.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The samples of a model: `samples[i][j]` is sample `i` of input `j`. Each input's values depend
/// only on its generator, seed and the sample index, so the parent and a worker (the `index`
/// transfer) make the same bytes. An `.npy` input with N stacked samples sets the count to the
/// largest N; shorter inputs repeat. On error, returns the index of the failing input.
pub(crate) fn generate_samples(
    inputs: &[InputSpec],
    count: usize,
) -> Result<Vec<Vec<TensorData>>, (usize, anyhow::Error)> {
    let mut per_input = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let (dtype, shape) = (input.dtype, input.shape.as_slice());
        per_input.push(
            match &input.generator {
                Generator::File { path } => testdata::file_samples(path, &input.name, dtype, shape),
                Generator::Files { paths } => {
                    testdata::files_samples(paths, &input.name, dtype, shape)
                }
                g => tensor::generate(g, dtype, shape, input.seed, count),
            }
            .map_err(|e| (i, e))?,
        );
    }
    let n = per_input.iter().map(Vec::len).max().unwrap_or(1).max(1);
    Ok((0..n)
        .map(|i| per_input.iter().map(|s| s[i % s.len()].clone()).collect())
        .collect())
}

impl ModelSpec {
    /// This model with its batch dim bound to `batch` and its samples generated at that shape
    /// (the same seeds, so the same values where the shapes agree); itself when it has no batch
    /// binding or is at that batch already.
    pub(crate) fn at_batch(&self, batch: usize) -> anyhow::Result<ModelSpec> {
        let Some(binding) = &self.batch else {
            return Ok(self.clone());
        };
        let mut shapes: Vec<Vec<i64>> = self.inputs.iter().map(|i| i.shape.clone()).collect();
        binding.apply(&mut shapes, batch);
        if self.inputs.iter().zip(&shapes).all(|(i, s)| i.shape == *s) {
            return Ok(self.clone());
        }
        let mut m = ModelSpec {
            samples: Vec::new(),
            ..self.clone()
        };
        for (i, s) in m.inputs.iter_mut().zip(shapes) {
            i.shape = s;
        }
        m.samples = generate_samples(&m.inputs, self.samples.len()).map_err(|(i, e)| {
            e.context(format!(
                "model `{}`, input `{}` at batch {batch}",
                m.name, m.inputs[i].name
            ))
        })?;
        Ok(m)
    }
}
