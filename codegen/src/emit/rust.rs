//! The Rust registration glue (`src/forge_generated.rs`).
