//! forge's pure core: parse a user crate's source, build the IR, check it, emit code.
//!
//! Everything here is a function over source text: no network, no database, no clock.

pub mod emit;
pub mod ir;
pub mod serde_case;
pub mod sql;
