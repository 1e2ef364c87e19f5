//! Analysis of literal SQL: which tables a statement reads and writes.
