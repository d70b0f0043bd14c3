//! The models' input and output, read without a runtime: ONNX signatures from the protobuf
//! ([`onnx`]), element types, tensors as bytes and input generators ([`tensor`]), and inputs and
//! expected outputs from files ([`testdata`]). The scenario resolves against these, the worker
//! pool carries their tensors, and `bench inspect`, `init` and `run` read models through them.

pub mod onnx;
pub mod tensor;
pub mod testdata;
