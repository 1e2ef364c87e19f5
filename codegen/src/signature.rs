//! Workflow contract signatures.
//!
//! A run persisted under one contract can only be resumed by code with the same contract, so
//! the signature must change whenever anything a stored run depends on changes, and must not
//! change for anything else (comments, formatting, docs, handler bodies between steps).
//!
//! # Canonical encoding (version 1)
//!
//! The signature is the first 16 bytes (32 lowercase hex digits) of the blake3 hash of the
//! compact JSON (serde_json, fields in the order below, no whitespace) of:
//!
//! ```text
//! { "encoding": 1,
//!   "timeout_ms": <u64 | null>,
//!   "input": <TypeRef | null>,        // the IR's JSON form of the input argument's type
//!   "output": <TypeRef>,
//!   "steps": [<key>, …],               // literal step keys in source order
//!   "waits": [{"key": <key>, "ty": <TypeRef | null>}, …],
//!   "types": [{"id", "generics", "shape"}, …] }
//! ```
//!
//! `types` holds every type definition reachable from `input`, `output` and the wait types,
//! sorted by id, with their shapes as in the IR except that every `doc` is removed and every
//! `span` is replaced by the empty span. The workflow's name and version are not part of the
//! encoding: they are the key the signature is stored under.

use serde::Serialize;

use crate::ir::{Field, Shape, Span, TypeIndex, TypeRef, VariantShape, WaitKey, WorkflowContract};

#[derive(Serialize)]
struct Canonical<'a> {
    encoding: u32,
    timeout_ms: Option<u64>,
    input: Option<&'a TypeRef>,
    output: &'a TypeRef,
    steps: &'a [String],
    waits: &'a [WaitKey],
    types: Vec<CanonicalType<'a>>,
}

#[derive(Serialize)]
struct CanonicalType<'a> {
    id: &'a str,
    generics: &'a [String],
    shape: Shape,
}

/// The contract's signature; `types` must index the IR's types (sorted by id).
pub fn signature(contract: &WorkflowContract, types: &TypeIndex) -> String {
    let canonical = Canonical {
        encoding: 1,
        timeout_ms: contract.timeout_ms,
        input: contract.input.as_ref(),
        output: &contract.output,
        steps: &contract.steps,
        waits: &contract.waits,
        types: canonical_types(contract, types),
    };
    hex128(&serde_json::to_vec(&canonical).expect("the canonical form serialises"))
}

/// A hash of the contract's types alone (input, output, awaited events and every definition
/// they reach), so that FG401 can tell a type change from a step, event or timeout change.
pub fn types_digest(contract: &WorkflowContract, types: &TypeIndex) -> String {
    #[derive(Serialize)]
    struct TypesOnly<'a> {
        input: Option<&'a TypeRef>,
        output: &'a TypeRef,
        waits: Vec<Option<&'a TypeRef>>,
        types: Vec<CanonicalType<'a>>,
    }
    let only = TypesOnly {
        input: contract.input.as_ref(),
        output: &contract.output,
        waits: contract.waits.iter().map(|w| w.ty.as_ref()).collect(),
        types: canonical_types(contract, types),
    };
    hex128(&serde_json::to_vec(&only).expect("the types serialise"))
}

fn canonical_types<'a>(
    contract: &'a WorkflowContract,
    types: &TypeIndex<'a>,
) -> Vec<CanonicalType<'a>> {
    let mut roots: Vec<&TypeRef> = contract.input.iter().collect();
    roots.push(&contract.output);
    roots.extend(contract.waits.iter().filter_map(|w| w.ty.as_ref()));
    types
        .reachable(roots)
        .into_iter()
        .map(|i| {
            let def = &types.types()[i];
            CanonicalType {
                id: &def.id,
                generics: &def.generics,
                shape: without_docs_and_spans(&def.shape),
            }
        })
        .collect()
}

/// The first 128 bits of blake3, as 32 lowercase hex digits.
fn hex128(bytes: &[u8]) -> String {
    blake3::hash(bytes).as_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn without_docs_and_spans(shape: &Shape) -> Shape {
    let clean_fields = |fields: &[Field]| -> Vec<Field> {
        fields
            .iter()
            .map(|f| Field {
                doc: None,
                span: Span::default(),
                ..f.clone()
            })
            .collect()
    };
    match shape {
        Shape::Struct { fields, tag } => Shape::Struct {
            fields: clean_fields(fields),
            tag: tag.clone(),
        },
        Shape::Enum { tagging, variants } => Shape::Enum {
            tagging: tagging.clone(),
            variants: variants
                .iter()
                .map(|v| crate::ir::Variant {
                    doc: None,
                    span: Span::default(),
                    shape: match &v.shape {
                        VariantShape::Struct { fields } => VariantShape::Struct {
                            fields: clean_fields(fields),
                        },
                        other => other.clone(),
                    },
                    ..v.clone()
                })
                .collect(),
        },
        other => other.clone(),
    }
}
