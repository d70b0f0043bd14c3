//! Models shaped like real exports that nobody here wrote (`tests/models/wild/`, made by
//! `scripts/make_wild_models.py`) run end to end, in every transfer mode: paddle2onnx's `-1` and
//! `?` dims and dotted dim names, an input of unknown rank, `unk__N`/`None` dims and a zero-size
//! input, weights listed as inputs (kept, and fed), and weights in an external file.

use crate::common;

#[test]
fn exports_from_the_wild_bind_and_run_in_every_transfer_mode() {
    let wild = std::fs::canonicalize("tests/models/wild").unwrap();
    let w = wild.display();
    let scenario = format!(
        r#"
[[model]]
name = "ocr"
path = "{w}/paddle_dims.onnx"
dims = {{ "p2o.DynamicDimension.0" = 2 }}
inputs.x.shape = [1, 3, 48, 192]

[[model]]
name = "modèle_日本"
path = "{w}/unknown_rank.onnx"
inputs.x.shape = [2, 5]

[[model]]
name = "ext"
path = "{w}/external_data.onnx"
dims = {{ batch = 2 }}

[[model]]
name = "ir3"
path = "{w}/ir3_weights_as_inputs.onnx"

[[model]]
name = "fed"
path = "{w}/overridable_weights.onnx"
inputs.w.generator = {{ kind = "const", value = 0.25 }}

[[model]]
name = "unk"
path = "{w}/unk_dims.onnx"
inputs.x.shape = [2, 3, 2]

[workload]
warmup = "0s"
min_requests = 1

[sweep]
transfer = ["pipe", "shm", "index"]
"#
    );
    let run = common::sweep(&scenario, &["--requests", "60"]);
    run.assert_ok_timing_aside();
    let models = ["ocr", "modèle_日本", "ext", "ir3", "fed", "unk"];
    for transfer in ["pipe", "shm", "index"] {
        for m in models {
            let row = run
                .rows
                .iter()
                .find(|r| r["transfer"] == transfer && r["model"] == m)
                .unwrap_or_else(|| panic!("no row for {m} with {transfer}"));
            assert_eq!(row["errors"], "0", "{m} {transfer}: {row:?}");
            common::assert_valid_timing_aside(row);
            assert!(
                common::num(row, "requests") > 0.0,
                "{m} {transfer}: {row:?}"
            );
        }
    }
}
