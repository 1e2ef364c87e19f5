//! Support for the end-to-end tests (in `tests/` here, in `tests/app` and in `cli/tests`): the
//! pinned TypeScript compiler, and the one configuration of the cargo builds they run outside
//! the workspace.

pub mod nested;
pub mod typescript;
