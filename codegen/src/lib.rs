//! forge's pure core: parse a user crate's source, build the IR, check it, emit code.
//!
//! Everything here is a function over source text: no network, no database, no clock.
//! Data flows one way: [`parse`] (one file at a time, cacheable) → [`resolve`] (the whole
//! crate, into the [`ir::Ir`]) → [`emit`].

pub mod check;
pub mod config;
pub mod emit;
pub mod ir;
pub mod lock;
pub mod parse;
pub mod reactivity;
pub mod resolve;
pub mod serde_case;
pub mod signature;
pub mod sql;
