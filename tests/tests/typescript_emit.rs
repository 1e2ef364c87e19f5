//! The TypeScript client through the real compiler and the real runtime: `wire.ts` asserts,
//! at the type level, that every generated type admits exactly its serde wire values, and
//! `client.test.mjs` drives the compiled client against an HTTP server in Node.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_codegen::emit::typescript;
use forge_codegen::ir::{
    Field, Ir, Kind, Scalar, Shape, StructTag, Tagging, TypeRef, Variant, WireName,
};
use support::ir::*;
use support::typescript::{check, check_with, compile};

/// Hand-written TypeScript that runs against the generated files.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("typescript")
        .join(name)
}

/// Writes the client generated from `ir` into `dir`, with the fixtures named, and returns
/// the paths tsc should be given.
fn generate(dir: &Path, ir: &Ir, fixtures: &[&str]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for file in typescript::emit(ir) {
        fs::write(dir.join(&file.path), &file.contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.path));
        paths.push(PathBuf::from(file.path));
    }
    for name in fixtures {
        fs::copy(fixture(name), dir.join(name))
            .unwrap_or_else(|e| panic!("cannot copy {name}: {e}"));
        paths.push(PathBuf::from(name));
    }
    paths
}

#[test]
fn generated_types_admit_exactly_the_wire_values() {
    let dir = support::scratch_dir("typescript_wire");
    let paths = generate(&dir, &all_shapes(), &["wire.ts"]);
    let files: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    check(&dir, &files);
    check_with(&dir, &files, &["--exactOptionalPropertyTypes"]);
}

#[test]
fn client_speaks_the_rpc_protocol() {
    let dir = support::scratch_dir("typescript_client");
    let paths = generate(&dir, &all_shapes(), &[]);
    let files: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = dir.join("out");
    compile(&dir, &files, &out);
    // The compiled files are ES modules; Node needs to be told.
    fs::write(out.join("package.json"), r#"{ "type": "module" }"#)
        .unwrap_or_else(|e| panic!("cannot write package.json: {e}"));
    fs::copy(fixture("client.test.mjs"), out.join("client.test.mjs"))
        .unwrap_or_else(|e| panic!("cannot copy client.test.mjs: {e}"));
    let output = Command::new("node")
        .arg("client.test.mjs")
        .current_dir(&out)
        .output()
        .unwrap_or_else(|e| panic!("could not run `node client.test.mjs`: {e}"));
    assert!(
        output.status.success(),
        "node client.test.mjs failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One IR with every shape the emitter handles; `wire.ts` names each type.
fn all_shapes() -> Ir {
    let types = vec![
        // Output-only: serialize names, server-omitted fields, a skipped field and variant.
        output(def(
            "schema::User",
            strukt(vec![
                field("id", named("schema::UserId")),
                renamed("display_name", "displayName", string()),
                Field {
                    skip_serializing_if: Some("Option::is_none".to_owned()),
                    ..field("email", opt(string()))
                },
                field("avatar", opt(string())),
                Field {
                    skip_serializing: true,
                    skip_deserializing: true,
                    ..field("password_hash", string())
                },
                renamed("created_at", "createdAt", scalar(Scalar::DateTime)),
                field("tags", list(string())),
                field("role", named("schema::Role")),
            ]),
        )),
        output(def(
            "schema::Role",
            enumeration(
                Tagging::External,
                vec![
                    Variant {
                        wire: wire("admin"),
                        ..unit("Admin")
                    },
                    Variant {
                        wire: wire("member"),
                        ..unit("Member")
                    },
                    Variant {
                        skip_serializing: true,
                        ..unit("Root")
                    },
                ],
            ),
        )),
        def(
            "schema::UserId",
            Shape::Newtype {
                of: scalar(Scalar::Uuid),
            },
        ),
        // Input-only: deserialize names, client-omittable fields, a skipped field.
        input(def(
            "functions::NewUser",
            strukt(vec![
                Field {
                    wire: WireName {
                        serialize: "DisplayName".to_owned(),
                        deserialize: "displayName".to_owned(),
                        aliases: Vec::new(),
                    },
                    ..field("display_name", string())
                },
                field("email", opt(string())),
                Field {
                    default: true,
                    ..field("age", scalar(Scalar::U8))
                },
                Field {
                    skip_deserializing: true,
                    ..field("internal_note", string())
                },
                renamed("first_name", "first-name", string()),
            ]),
        )),
        // Both ways: only what is skipped both ways disappears.
        def(
            "schema::Settings",
            strukt(vec![
                field("theme", string()),
                Field {
                    skip_serializing: true,
                    ..field("new_password", string())
                },
            ]),
        ),
        def(
            "schema::Shape",
            enumeration(
                Tagging::Internal {
                    tag: "type".to_owned(),
                },
                vec![
                    record("Circle", vec![field("radius", scalar(Scalar::F64))]),
                    record("Rect", vec![field("w", int()), field("h", int())]),
                    unit("Empty"),
                    newtype("Labelled", named("schema::Label")),
                    Variant {
                        untagged: true,
                        ..newtype("Points", list(scalar(Scalar::F64)))
                    },
                ],
            ),
        ),
        def("schema::Label", strukt(vec![field("text", string())])),
        def(
            "schema::Event",
            enumeration(
                Tagging::Adjacent {
                    tag: "t".to_owned(),
                    content: "c".to_owned(),
                },
                vec![
                    unit("Ping"),
                    newtype("Message", string()),
                    tuple("Move", vec![int(), int()]),
                    record("Resize", vec![field("w", int()), field("h", int())]),
                ],
            ),
        ),
        def(
            "schema::Value",
            enumeration(
                Tagging::Untagged,
                vec![
                    unit("Nothing"),
                    newtype("Number", scalar(Scalar::F64)),
                    newtype("Text", string()),
                    tuple("Pair", vec![int(), int()]),
                    record("Object", vec![field("key", string())]),
                ],
            ),
        ),
        def(
            "schema::Command",
            enumeration(
                Tagging::External,
                vec![
                    unit("Stop"),
                    newtype("Go", scalar(Scalar::U32)),
                    tuple("Move", vec![int(), int()]),
                    record("Say", vec![field("text", string())]),
                ],
            ),
        ),
        generic(
            output(def(
                "schema::Page",
                strukt(vec![
                    field("items", list(param("T"))),
                    field("total", scalar(Scalar::U32)),
                    field("next", opt(string())),
                ]),
            )),
            &["T"],
        ),
        def(
            "schema::Tagged",
            Shape::Struct {
                fields: vec![field("id", int())],
                tag: Some(StructTag {
                    tag: "kind".to_owned(),
                    value: "tagged".to_owned(),
                }),
            },
        ),
        def(
            "schema::Audited",
            strukt(vec![
                field("name", string()),
                flattened("audit", named("schema::Audit")),
                flattened("extra", map(scalar(Scalar::Bool))),
            ]),
        ),
        def(
            "schema::Audit",
            strukt(vec![
                field("by", string()),
                field("at", scalar(Scalar::DateTime)),
            ]),
        ),
        def(
            "schema::Point",
            Shape::Tuple {
                items: vec![scalar(Scalar::F64), scalar(Scalar::F64)],
            },
        ),
        def("schema::Marker", Shape::Unit),
        def(
            "schema::Rgb",
            Shape::Newtype {
                of: TypeRef::Array {
                    of: Box::new(scalar(Scalar::U8)),
                    len: 3,
                },
            },
        ),
        def(
            "schema::Timing",
            strukt(vec![
                field("took", scalar(Scalar::Duration)),
                field("meta", scalar(Scalar::JsonObject)),
                field("blob", scalar(Scalar::Json)),
                field("unit", scalar(Scalar::Unit)),
                field("scores", list(opt(int()))),
                field("lookup", map(opt(int()))),
            ]),
        ),
        // Two types named `Status`.
        def(
            "functions::billing::Status",
            enumeration(Tagging::External, vec![unit("Paid"), unit("Due")]),
        ),
        def(
            "schema::Status",
            enumeration(Tagging::External, vec![unit("Open"), unit("Closed")]),
        ),
        // The user's own `GetUserArgs`: the generated one must yield.
        input(def(
            "functions::GetUserArgs",
            strukt(vec![field("id", named("schema::UserId"))]),
        )),
    ];
    let handlers = vec![
        handler(
            Kind::Query,
            "list_users",
            vec![("limit", scalar(Scalar::U32)), ("cursor", opt(string()))],
            named_of("schema::Page", vec![named("schema::User")]),
        ),
        handler(
            Kind::Query,
            "get_user",
            vec![("args", named("functions::GetUserArgs"))],
            opt(named("schema::User")),
        ),
        handler(
            Kind::Mutation,
            "create_user",
            vec![("input", named("functions::NewUser"))],
            named("schema::User"),
        ),
        handler(Kind::Query, "ping", Vec::new(), string()),
        handler(Kind::Mutation, "reset", Vec::new(), scalar(Scalar::Unit)),
        handler(
            Kind::Query,
            "statuses",
            Vec::new(),
            TypeRef::Tuple {
                items: vec![named("functions::billing::Status"), named("schema::Status")],
            },
        ),
        handler(
            Kind::Job,
            "send_welcome_email",
            vec![("user", named("schema::User"))],
            scalar(Scalar::Unit),
        ),
    ];
    ir(types, handlers)
}

// ---- the real `forge` binary on fixtures/kitchen_sink, with a hand-written file of correct
// and incorrect wire values for its types ----

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    for entry in
        fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

#[test]
fn kitchen_sink_typescript_passes_tsc_strict() {
    let project = support::scratch_dir("kitchen_sink");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kitchen_sink"),
        &project,
    );
    let output = Command::new(support::forge_bin())
        .args(["generate"])
        .current_dir(&project)
        .output()
        .expect("forge runs");
    assert!(
        output.status.success(),
        "forge generate failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let client_dir = project.join("frontend/src/lib/forge");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("typescript/kitchen_sink.ts"),
        client_dir.join("kitchen_sink.ts"),
    )
    .expect("copy the type test");
    let files: Vec<PathBuf> = [
        "types.ts",
        "api.ts",
        "client.ts",
        "index.ts",
        "kitchen_sink.ts",
    ]
    .map(PathBuf::from)
    .to_vec();
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    check(&client_dir, &files);
    check_with(&client_dir, &files, &["--exactOptionalPropertyTypes"]);
}
