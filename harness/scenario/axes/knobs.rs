//! ONNX Runtime's session knobs as sweep axes, made from their one list (`scenario/session.rs`),
//! and the text form in which the knobs cross to the workers.
//!
//! Every knob is an axis of the same shape: one `[sweep]` key of its name, a `bench run` flag of
//! that name with dashes (`--cpu-arena`), one `results.csv` column and one `run.json` key of its
//! name, a part in `bench validate`'s line and in the id only away from its default, and refused
//! with tract and torch (`ort_only`). So the list gives only what differs between knobs (type,
//! default, the flag's value name and `--help` line, the id fragment), and this file's expansion
//! of it (`knob_axes!`) writes each knob's [`Axis`] into [`KNOBS`], which `list.rs` puts in the
//! sweep's order.
//!
//! The same expansion gives [`SessionKnobs::settings`] and [`SessionKnobs::set`]: each knob as a
//! `(name, text)` pair and back, which is how `Setup` carries the knobs (`protocol.rs`). The
//! Python workers' codec sees a list of string pairs and never learns a knob, and the wire
//! changes with no knob; `report`'s plots read a row's knobs back the same way.

use serde_json::json;

use super::values::{AxisValue, Knob, ReadKnob};
use super::{Axis, place, sweep_key};
// The list's expressions (`GraphOptimization::All` in an `id`) are expanded here, so every name
// of `scenario::session` is in scope: a knob of a new type needs no import.
#[allow(unused_imports)]
use crate::scenario::session::*;

/// `stringify!`ed `name` with its underscores as dashes, at compile time: a knob's flag
/// (`cpu_arena` is `--cpu-arena`).
macro_rules! dashed {
    ($name:ident) => {{
        const LEN: usize = stringify!($name).len();
        const BYTES: [u8; LEN] = {
            let name = stringify!($name).as_bytes();
            let mut out = [0u8; LEN];
            let mut i = 0;
            while i < LEN {
                out[i] = if name[i] == b'_' { b'-' } else { name[i] };
                i += 1;
            }
            out
        };
        match std::str::from_utf8(&BYTES) {
            Ok(flag) => flag,
            Err(_) => panic!("a knob's name is ASCII"),
        }
    }};
}

/// A knob's part of validate's line, `key=value`, only away from its default (as in the id), so
/// the lines of simple sweeps stay short.
fn describe<T: AxisValue>(name: &str, v: T, default: T) -> Option<String> {
    (v != default).then(|| format!("{name}={}", v.text()))
}

/// Declares [`KNOBS`] and the text form of [`SessionKnobs`] from the knobs' list.
macro_rules! knob_axes {
    ({} $( $name:ident {
        $(#[$doc:meta])*
        type: $ty:ty = $default:expr,
        flag: $value_name:literal,
        help: $help:literal,
        id: $id:expr $(,)?
    } )*) => {
        /// Each session knob's axis, by the knob's name.
        pub(in crate::scenario) struct KnobAxes {
            $( pub $name: Axis<knob_type::$name>, )*
        }

        /// The session knobs' axes (`list::ALL` holds them in the sweep's order).
        pub(in crate::scenario) static KNOBS: KnobAxes = KnobAxes {
            $( $name: Axis {
                name: stringify!($name),
                keys: &[sweep_key(
                    stringify!($name),
                    dashed!($name),
                    $value_name,
                    <knob_type::$name as Knob>::FLAG,
                    $help,
                )],
                default: SessionKnobs::DEFAULT.$name,
                place: place!($name, session.$name),
                resolve: |s, key, d, e| {
                    <knob_type::$name as ReadKnob>::resolve(s.sweep(|r| &r.$name), key, d, e)
                },
                id: $id,
                columns: &[stringify!($name)],
                cells: |v| vec![json!(v.cell())],
                run_json: &[stringify!($name)],
                effective: Some(concat!("sweep.", stringify!($name))),
                describe: |v, _, _| describe(stringify!($name), v, SessionKnobs::DEFAULT.$name),
                ort_only: true,
                #[cfg(test)]
                examples: <knob_type::$name as Knob>::EXAMPLES,
            }, )*
        };

        impl SessionKnobs {
            /// Each knob's name and value as text (`true`, `2`, `basic`), in the list's order: how
            /// `Setup` carries them to the workers.
            pub fn settings(&self) -> Vec<(&'static str, String)> {
                vec![$( (stringify!($name), self.$name.text()) ),*]
            }

            /// Sets the knob `name` from its text; an unknown knob or value is an error naming
            /// it, and leaves the knobs as they were.
            pub(crate) fn set(&mut self, name: &str, text: &str) -> Result<(), String> {
                let bad = || format!("`{text}` is not a value of the session knob `{name}`");
                match name {
                    $( stringify!($name) => {
                        self.$name = <knob_type::$name as Knob>::parse(text).ok_or_else(bad)?
                    } )*
                    _ => return Err(format!("`{name}` is not a session knob of this build")),
                }
                Ok(())
            }

            /// The point id's fragments of the knobs, in the id's order (`opt-basic`, `nospin`):
            /// none for a knob at its default.
            pub(crate) fn fragments(&self) -> Vec<String> {
                [$( (KNOBS.$name.id)(self.$name) ),*].into_iter().flatten().collect()
            }
        }
    };
}

with_session_knobs!(knob_axes! {});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_knobs_flag_is_its_name_with_dashes() {
        assert_eq!(dashed!(intra_spinning), "intra-spinning");
        assert_eq!(KNOBS.cpu_arena.keys[0].flag, "cpu-arena");
    }

    /// The text form round-trips every example value of every knob, in the list's order, and
    /// refuses what is not a knob or not a value.
    #[test]
    fn settings_read_back_as_the_knobs_they_came_from() {
        for p in super::super::example_points() {
            let pairs = p.session.settings();
            let names: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, SessionKnobs::NAMES);
            let mut back = SessionKnobs::DEFAULT;
            for (name, text) in &pairs {
                back.set(name, text).unwrap();
            }
            assert_eq!(back, p.session);
        }
        let mut k = SessionKnobs::DEFAULT;
        assert!(
            k.set("prepacking", "maybe")
                .unwrap_err()
                .contains("prepacking")
        );
        assert!(k.set("inter_threads", "0").is_err());
        assert!(
            k.set("warp_drive", "true")
                .unwrap_err()
                .contains("warp_drive")
        );
        assert_eq!(k, SessionKnobs::DEFAULT);
    }

    #[test]
    fn fragments_are_the_ids_session_part() {
        let mut k = SessionKnobs::DEFAULT;
        assert!(k.fragments().is_empty());
        k.graph_optimization = GraphOptimization::Basic;
        k.intra_spinning = false;
        assert_eq!(k.fragments(), ["opt-basic", "nospin"]);
    }
}
