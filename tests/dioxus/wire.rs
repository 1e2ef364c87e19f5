// Wire tests of the generated Dioxus client's types (see tests/tests/dioxus.rs, which emits
// `shapes.rs` from the IR `typescript/wire.ts` also tests). Each accepted value is what
// serde puts on the wire on the server, and must deserialise and serialise back to exactly
// the same JSON; each rejected value is one serde never produces.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::shapes::*;

/// Reads `json` as a `T` and writes it back: the same JSON must come out.
fn round_trip<T: Serialize + DeserializeOwned + std::fmt::Debug>(json: Json) -> T {
    let value: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| {
        panic!(
            "{json} does not read as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&value).expect("the value serialises");
    assert_eq!(back, json, "{value:?} wrote different JSON");
    value
}

fn rejects<T: DeserializeOwned + std::fmt::Debug>(json: Json) {
    if let Ok(value) = serde_json::from_value::<T>(json.clone()) {
        panic!("{json} read as {value:?}, but serde never writes it");
    }
}

fn user() -> Json {
    json!({
        "id": "7f1c0e52-4d0a-4a5e-9a57-3c1f6f0b7a10",
        "displayName": "Ada",
        "avatar": null,
        "createdAt": "2026-01-01T00:00:00Z",
        "tags": ["admin"],
        "role": "admin",
    })
}

#[test]
fn output_structs_use_serialize_names_and_may_miss_omitted_fields() {
    let ada: User = round_trip(user());
    assert_eq!(ada.display_name, "Ada");
    assert_eq!(ada.email, None);
    let mut with_email = user();
    with_email["email"] = json!("ada@example.com");
    assert_eq!(
        round_trip::<User>(with_email).email.as_deref(),
        Some("ada@example.com")
    );
    // A plain `Option` is always sent (as `null`); serde also reads its absence as `None`.
    let mut no_avatar = user();
    no_avatar.as_object_mut().unwrap().remove("avatar");
    let read: User = serde_json::from_value(no_avatar).expect("a missing Option reads");
    assert_eq!(read.avatar, None);
    // The Rust name is not the wire name.
    let mut snake = user();
    let name = snake
        .as_object_mut()
        .unwrap()
        .remove("displayName")
        .unwrap();
    snake["display_name"] = name;
    rejects::<User>(snake);
    let mut null_tags = user();
    null_tags["tags"] = Json::Null;
    rejects::<User>(null_tags);
}

#[test]
fn input_structs_use_deserialize_names() {
    let input = NewUser {
        display_name: "Ada".to_owned(),
        email: None,
        age: 36,
        first_name: "Ada".to_owned(),
    };
    assert_eq!(
        serde_json::to_value(&input).unwrap(),
        json!({ "displayName": "Ada", "email": null, "age": 36, "first-name": "Ada" })
    );
}

#[test]
fn both_ways_the_client_sends_what_the_server_reads_and_reads_what_it_writes() {
    // `new_password` is never sent by the server, but read by it.
    let settings: Settings = serde_json::from_value(json!({ "theme": "dark" })).unwrap();
    assert_eq!(settings.new_password, None);
    let change = Settings {
        theme: "dark".to_owned(),
        new_password: Some("secret".to_owned()),
    };
    assert_eq!(
        serde_json::to_value(&change).unwrap(),
        json!({ "theme": "dark", "new_password": "secret" })
    );
    rejects::<Settings>(json!({ "new_password": "secret" }));
}

#[test]
fn enums() {
    for role in [json!("admin"), json!("member")] {
        round_trip::<Role>(role);
    }
    rejects::<Role>(json!("Admin"));
    rejects::<Role>(json!("Root"));
    for shape in [
        json!({ "type": "Circle", "radius": 1.5 }),
        json!({ "type": "Rect", "w": 2, "h": 3 }),
        json!({ "type": "Empty" }),
        json!({ "type": "Labelled", "text": "a label" }),
        json!([1.0, 2.0, 3.0]),
    ] {
        round_trip::<Shape>(shape);
    }
    rejects::<Shape>(json!({ "radius": 1.5 }));
    rejects::<Shape>(json!({ "type": "Triangle", "radius": 1.5 }));
    for event in [
        json!({ "t": "Ping" }),
        json!({ "t": "Message", "c": "hello" }),
        json!({ "t": "Move", "c": [1, 2] }),
        json!({ "t": "Resize", "c": { "w": 1, "h": 2 } }),
    ] {
        round_trip::<Event>(event);
    }
    rejects::<Event>(json!({ "t": "Message" }));
    rejects::<Event>(json!({ "t": "Move", "c": [1, 2, 3] }));
    for value in [
        json!(null),
        json!(1.5),
        json!("text"),
        json!([1, 2]),
        json!({ "key": "k" }),
    ] {
        round_trip::<Value>(value);
    }
    rejects::<Value>(json!(true));
    for command in [
        json!("Stop"),
        json!({ "Go": 3 }),
        json!({ "Move": [1, 2] }),
        json!({ "Say": { "text": "hi" } }),
    ] {
        round_trip::<Command>(command);
    }
    rejects::<Command>(json!({ "text": "hi" }));
    round_trip::<FunctionsBillingStatus>(json!("Paid"));
    rejects::<FunctionsBillingStatus>(json!("Open"));
    round_trip::<SchemaStatus>(json!("Open"));
}

#[test]
fn struct_forms_generics_and_flatten() {
    let page: Page<User> = round_trip(json!({ "items": [user()], "total": 1, "next": null }));
    assert_eq!(page.items.len(), 1);
    rejects::<Page<User>>(json!({ "items": ["x"], "total": 1, "next": null }));
    round_trip::<Tagged>(json!({ "kind": "tagged", "id": 1 }));
    let audited: Audited = round_trip(json!({
        "name": "n", "by": "ada", "at": "2026-01-01T00:00:00Z", "extraFlag": true,
    }));
    assert_eq!(audited.extra.get("extraFlag"), Some(&true));
    rejects::<Audited>(json!({ "name": "n", "at": "2026-01-01T00:00:00Z" }));
    round_trip::<Point>(json!([1.0, 2.0]));
    rejects::<Point>(json!([1.0, 2.0, 3.0]));
    round_trip::<Rgb>(json!([255, 0, 0]));
    rejects::<Rgb>(json!([255, 0]));
    round_trip::<Marker>(json!(null));
    round_trip::<UserId>(json!("7f1c0e52-4d0a-4a5e-9a57-3c1f6f0b7a10"));
}

#[test]
fn scalars_keep_their_wire_form() {
    let timing: Timing = round_trip(json!({
        "took": { "secs": 1, "nanos": 500 },
        "meta": { "anything": [1, "two"] },
        "blob": "any JSON at all",
        "unit": null,
        "scores": [1, null],
        "lookup": { "a": 1, "b": null },
    }));
    assert_eq!(timing.took, std::time::Duration::new(1, 500));
    rejects::<Timing>(json!({
        "took": 1500, "meta": {}, "blob": null, "unit": null, "scores": [], "lookup": {},
    }));
}
