//! The TypeScript client.
