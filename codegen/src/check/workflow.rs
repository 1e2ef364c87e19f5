use super::{Project, Rule};
use crate::ir::Diagnostic;

pub const RULES: &[Rule] = &[];

pub fn check(_project: &Project, _out: &mut Vec<Diagnostic>) {}
