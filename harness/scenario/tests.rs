//! Unit tests of scenario parsing and resolution.
