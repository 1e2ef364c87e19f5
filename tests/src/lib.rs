//! Support for the end-to-end tests (in `tests/` here and in `tests/app`): the pinned
//! TypeScript compiler.

pub mod typescript;
