//! OpenAPI 3.1 for a project's RPC API (`forge generate --target openapi`): one file,
//! `openapi.json`.
//!
//! Every query and mutation is `POST /_api/rpc/{name}` (a path each, so operation ids and
//! request schemas are per handler) taking the request envelope `{"args": {…}}` and
//! answering the success envelope `{"success": true, "data": …, "request_id"}` (200) or
//! the error envelope with each code's status (DESIGN, "Runtime wire protocol"). Other
//! kinds are not reachable over RPC and are left out.
//!
//! Schemas come from the JSON Schema emitter ([`super::jsonschema::Schemas`]): the same
//! definitions, direction-aware (`Name.input` / `Name.output` where serde reads and writes
//! a type differently), under `components/schemas` instead of `$defs`. OpenAPI 3.1's
//! default schema dialect is a superset of JSON Schema 2020-12, so they carry over as they
//! are. forge's own envelope schemas are `forge.*` keys, which no user type is given.
//!
//! Security: one bearer scheme (HS256 JWT). A non-public handler requires it; a public
//! one lists it as optional (`[{}, {"bearer": []}]`) and is marked `x-forge-public`.
//!
//! Output depends only on the IR, walked in its sorted order: same IR, same bytes.

#[cfg(test)]
mod tests;

use super::jsonschema::{Json, Schemas};
use super::GeneratedFile;
use crate::ir::{Handler, Ir, Kind, Options, TypeRef};

/// The file this target writes, relative to its output directory.
pub const FILE: &str = "openapi.json";

const ERROR_ENVELOPE: &str = "forge.ErrorEnvelope";
const SCHEMA_PREFIX: &str = "#/components/schemas/";
const SECURITY_SCHEME: &str = "bearer";

/// Every error code the RPC endpoint answers with, its status and when.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "VALIDATION_ERROR",
        "The body or the arguments are invalid (`details.field` names a bad argument), or the body is too large.",
    ),
    (
        "401",
        "UNAUTHORIZED",
        "A non-public handler was called without a valid bearer token.",
    ),
    ("403", "FORBIDDEN", "The caller may not do this."),
    (
        "404",
        "NOT_FOUND",
        "No handler has this name, or what it looked for does not exist.",
    ),
    ("429", "RATE_LIMITED", "Too many requests; retry later."),
    (
        "500",
        "INTERNAL_ERROR",
        "The handler failed; the message is `internal error` and the server logged the cause with the request id.",
    ),
    ("504", "TIMEOUT", "The handler ran past its timeout."),
];

/// The document, pretty-printed with a trailing newline.
pub fn emit(ir: &Ir) -> Vec<GeneratedFile> {
    let mut schemas = Schemas::new(ir);
    let mut paths: Vec<(String, Json)> = Vec::new();
    for handler in &ir.handlers {
        if !matches!(handler.kind, Kind::Query | Kind::Mutation) {
            continue;
        }
        let path = format!("/_api/rpc/{}", handler.name);
        if paths.iter().any(|(p, _)| *p == path) {
            // Two handlers share a name: FG502 reports it; the runtime serves the first.
            continue;
        }
        let operation = operation(&mut schemas, handler);
        paths.push((path, Json::obj([("post", operation)])));
    }
    let mut definitions = schemas.finish(&[ERROR_ENVELOPE]);
    let mut component_schemas = definitions.take();
    component_schemas.push((ERROR_ENVELOPE.to_owned(), error_envelope()));
    component_schemas.sort_by(|a, b| a.0.cmp(&b.0));

    let responses = ERRORS.iter().map(|(_, code, description)| {
        let media = Json::obj([("schema", reference(ERROR_ENVELOPE))]);
        (
            (*code).to_owned(),
            Json::obj([
                ("description", Json::str(format!("`{code}`: {description}"))),
                ("content", Json::obj([("application/json", media)])),
            ]),
        )
    });
    let components = Json::obj([
        ("schemas", Json::Obj(component_schemas)),
        ("responses", Json::Obj(responses.collect())),
        (
            "securitySchemes",
            Json::obj([(
                SECURITY_SCHEME,
                Json::obj([
                    ("type", Json::str("http")),
                    ("scheme", Json::str("bearer")),
                    ("bearerFormat", Json::str("JWT")),
                    (
                        "description",
                        Json::str(
                            "An HS256 JWT signed with the server's `FORGE_JWT_SECRET`: `sub` is the user id (a UUID), `exp` is required, `tenant_id` and `roles` are optional.",
                        ),
                    ),
                ]),
            )]),
        ),
    ]);
    let document = Json::obj([
        ("openapi", Json::str("3.1.0")),
        (
            "info",
            Json::obj([
                ("title", Json::str("forge API")),
                ("version", Json::str("1")),
                (
                    "description",
                    Json::str(
                        "The RPC API of a forge app, generated from its source by `forge generate --target openapi`; do not edit.",
                    ),
                ),
            ]),
        ),
        (
            "tags",
            Json::Arr(vec![
                tag("query", "Reads; may be served by a read replica."),
                tag("mutation", "Writes, in one transaction unless the handler opts out."),
            ]),
        ),
        ("paths", Json::Obj(paths)),
        ("components", components),
    ]);
    let mut contents = definitions.render(&document, Some(0), SCHEMA_PREFIX);
    contents.push('\n');
    vec![GeneratedFile {
        path: FILE.to_owned(),
        contents,
    }]
}

fn operation(schemas: &mut Schemas, handler: &Handler) -> Json {
    let kind = match handler.kind {
        Kind::Query => "query",
        _ => "mutation",
    };
    let mut members = vec![
        ("operationId".to_owned(), Json::str(&handler.name)),
        ("tags".to_owned(), Json::Arr(vec![Json::str(kind)])),
    ];
    if let Some(doc) = &handler.doc {
        let doc = doc.trim();
        if let Some(first) = doc.lines().next().filter(|line| !line.trim().is_empty()) {
            members.push(("summary".to_owned(), Json::str(first.trim())));
        }
        members.push(("description".to_owned(), Json::str(doc)));
    }
    let bearer = Json::obj([(SECURITY_SCHEME, Json::Arr(Vec::new()))]);
    let public = is_public(handler);
    let security = if public {
        vec![Json::Obj(Vec::new()), bearer]
    } else {
        vec![bearer]
    };
    members.push(("security".to_owned(), Json::Arr(security)));

    // The runtime calls a handler whose body has no `args` with `{}`, so `args` is
    // required exactly when some argument is.
    let args_required = handler
        .args
        .iter()
        .any(|arg| !matches!(arg.ty, TypeRef::Option { .. }));
    let mut request =
        Json::typed("object").with("properties", Json::obj([("args", schemas.args(handler))]));
    if args_required {
        request = request.with("required", Json::Arr(vec![Json::str("args")]));
    }
    members.push((
        "requestBody".to_owned(),
        Json::obj([
            ("required", Json::Bool(true)),
            (
                "content",
                Json::obj([("application/json", Json::obj([("schema", request)]))]),
            ),
        ]),
    ));

    let success = Json::typed("object")
        .with(
            "properties",
            Json::obj([
                ("success", Json::obj([("const", Json::Bool(true))])),
                ("data", schemas.output(&handler.returns)),
                ("request_id", Json::typed("string")),
            ]),
        )
        .with(
            "required",
            Json::Arr(vec![
                Json::str("success"),
                Json::str("data"),
                Json::str("request_id"),
            ]),
        );
    let mut responses = vec![(
        "200".to_owned(),
        Json::obj([
            ("description", Json::str("The handler's result.")),
            (
                "content",
                Json::obj([("application/json", Json::obj([("schema", success)]))]),
            ),
        ]),
    )];
    for (status, code, _) in ERRORS {
        responses.push((
            (*status).to_owned(),
            Json::obj([("$ref", Json::str(format!("#/components/responses/{code}")))]),
        ));
    }
    members.push(("responses".to_owned(), Json::Obj(responses)));
    if public {
        members.push(("x-forge-public".to_owned(), Json::Bool(true)));
    }
    Json::Obj(members)
}

fn is_public(handler: &Handler) -> bool {
    match &handler.options {
        Options::Query(options) => options.public,
        Options::Mutation(options) => options.public,
        _ => false,
    }
}

/// `{"success": false, "error": {"code", "message", "details"}, "request_id"}`.
fn error_envelope() -> Json {
    let codes = ERRORS.iter().map(|(_, code, _)| Json::str(*code)).collect();
    let error = Json::typed("object")
        .with(
            "properties",
            Json::obj([
                ("code", Json::typed("string").with("enum", Json::Arr(codes))),
                ("message", Json::typed("string")),
                (
                    "details",
                    Json::obj([(
                        "description",
                        Json::str("`null`, or for an invalid argument `{\"field\": <its name>}`."),
                    )]),
                ),
            ]),
        )
        .with(
            "required",
            Json::Arr(vec![Json::str("code"), Json::str("message")]),
        );
    Json::typed("object")
        .with("title", Json::str("forge error envelope"))
        .with(
            "properties",
            Json::obj([
                ("success", Json::obj([("const", Json::Bool(false))])),
                ("error", error),
                ("request_id", Json::typed("string")),
            ]),
        )
        .with(
            "required",
            Json::Arr(vec![
                Json::str("success"),
                Json::str("error"),
                Json::str("request_id"),
            ]),
        )
}

fn reference(key: &str) -> Json {
    Json::obj([("$ref", Json::str(format!("{SCHEMA_PREFIX}{key}")))])
}

fn tag(name: &str, description: &str) -> Json {
    Json::obj([
        ("name", Json::str(name)),
        ("description", Json::str(description)),
    ])
}
