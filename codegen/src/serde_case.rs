//! serde's `rename_all` case conversions, reproduced exactly.
