//! Components that use the generated client the way an app does: the client from context,
//! a query's hook re-run by a signal, a mutation called from an event handler.

use dioxus::prelude::*;

mod forge;

use forge::{Client, ForgeError, Note};

/// Provides the client to everything below it.
#[component]
fn App(base_url: String, token: Signal<Option<String>>) -> Element {
    use_context_provider(move || {
        Client::new(base_url.clone()).with_token_provider(move || token.cloned())
    });
    rsx! {
        Ping {}
        Notes {}
    }
}

#[component]
fn Ping() -> Element {
    let message = use_signal(|| "hello".to_owned());
    let pong = forge::use_ping(message);
    let text = match &*pong.read() {
        Some(Ok(pong)) => pong.message.clone(),
        Some(Err(error)) => error.to_string(),
        None => "…".to_owned(),
    };
    rsx! { p { "{text}" } }
}

#[component]
fn Notes() -> Element {
    let client = forge::use_client();
    let mut notes = forge::use_my_notes();
    let mut draft = use_signal(String::new);
    let mut failure = use_signal(|| None::<ForgeError>);
    let add = move |_| {
        let client = client.clone();
        async move {
            match forge::add_note(&client, draft.cloned()).await {
                Ok(_id) => notes.restart(),
                Err(error) => failure.set(Some(error)),
            }
        }
    };
    let list: Vec<Note> = match &*notes.read() {
        Some(Ok(notes)) => notes.clone(),
        _ => Vec::new(),
    };
    rsx! {
        input { value: "{draft}", oninput: move |e| draft.set(e.value()) }
        button { onclick: add, "Add" }
        if let Some(error) = failure() {
            p { "{error.message}" }
        }
        ul {
            for note in list {
                li { key: "{note.id}", "{note.text} ({note.created_at})" }
            }
        }
    }
}

fn main() {
    // Nothing launches the app here: the crate exists to be type-checked.
    let _ = App;
}
