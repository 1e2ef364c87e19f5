//! `POST /_api/mcp` against a real PostgreSQL, driven by the official Python MCP client
//! (the `mcp` package from PyPI, pinned, installed on first use into a virtualenv in the
//! target directory under a file lock), plus the protocol's edges over raw HTTP.

use std::path::PathBuf;
use std::process::Command;

use forge::registry::{decode_args, McpToolDef, NoArgs};
use forge::testing::{config, token, TestDatabase};
use forge::{App, McpToolContext, Registry, Running};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// The client library the conversation runs on.
const MCP_PACKAGE: &str = "mcp==1.30.0";

fn tool(
    name: &'static str,
    read_only: bool,
    description: Option<&'static str>,
    input_schema: &'static str,
) -> McpToolDef {
    McpToolDef {
        name,
        module: "tools",
        title: None,
        description,
        read_only,
        input_schema,
        rate_limit: None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    limit: Option<i32>,
}

/// What the glue would register: argument structs that deny unknown fields, and the
/// schemas codegen writes for them.
fn register(registry: &mut Registry) {
    registry.mcp_tool(
        McpToolDef {
            title: Some("Add a note"),
            ..tool(
                "notes.add",
                false,
                Some("Adds a note for the caller."),
                r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}"#,
            )
        },
        |ctx: McpToolContext, args| async move {
            let AddArgs { text } = decode_args(args)?;
            let id: i32 =
                sqlx::query_scalar("INSERT INTO notes (owner, text) VALUES ($1, $2) RETURNING id")
                    .bind(ctx.user_id()?)
                    .bind(&text)
                    .fetch_one(ctx.db())
                    .await?;
            Ok(json!({"id": id, "text": text}))
        },
    );
    registry.mcp_tool(
        tool(
            "notes.search",
            true,
            Some("The caller's notes containing `query`."),
            r#"{"type":"object","properties":{"query":{"type":"string"},"limit":{"anyOf":[{"type":"integer","minimum":-2147483648,"maximum":2147483647},{"type":"null"}]}},"required":["query"],"additionalProperties":false}"#,
        ),
        |ctx: McpToolContext, args| async move {
            let SearchArgs { query, limit } = decode_args(args)?;
            let texts: Vec<String> = sqlx::query_scalar(
                "SELECT text FROM notes WHERE owner = $1 AND strpos(text, $2) > 0 ORDER BY id LIMIT $3",
            )
            .bind(ctx.user_id()?)
            .bind(&query)
            .bind(i64::from(limit.unwrap_or(100)))
            .fetch_all(ctx.db())
            .await?;
            Ok(texts)
        },
    );
    // Writes in the tool's transaction and queues a job there; fails on request.
    registry.mcp_tool(
        tool(
            "notes.queue",
            false,
            None,
            r#"{"type":"object","properties":{"text":{"type":"string"},"fail":{"type":"boolean"}},"required":["text","fail"],"additionalProperties":false}"#,
        ),
        |ctx: McpToolContext, args| async move {
            #[derive(Deserialize)]
            struct Queue {
                text: String,
                fail: bool,
            }
            let Queue { text, fail } = decode_args(args)?;
            sqlx::query("INSERT INTO notes (owner, text) VALUES ($1, $2)")
                .bind(ctx.user_id()?)
                .bind(&text)
                .execute(ctx.tx())
                .await?;
            let job = ctx.dispatch_job("index", json!({"text": text})).await?;
            if fail {
                return Err(forge::Error::Validation("asked to fail".into()));
            }
            Ok(json!({"job": job}))
        },
    );
    registry.job(
        forge::registry::JobDef {
            name: "index",
            module: "",
            retry: forge::registry::Retry {
                max_attempts: 1,
                backoff: forge::registry::Backoff::Fixed,
                base_ms: 10,
                max_ms: 10,
            },
            timeout_ms: None,
            queue: "default",
            priority: 0,
        },
        |_ctx: forge::JobContext, _input| async move { Ok(()) },
    );
    registry.mcp_tool(
        tool(
            "refuse",
            true,
            None,
            r#"{"type":"object","properties":{},"additionalProperties":false}"#,
        ),
        |_ctx: McpToolContext, args| async move {
            decode_args::<NoArgs>(args)?;
            Err::<(), _>(forge::Error::Forbidden("not today".into()))
        },
    );
}

struct Fixture {
    _db: TestDatabase,
    node: Running,
}

async fn start() -> Fixture {
    let db = TestDatabase::new().await;
    sqlx::query(
        "CREATE TABLE notes (id serial PRIMARY KEY, owner uuid NOT NULL, text text NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let mut config = config(db.url());
    config.job_concurrency = 0;
    let node = App::new(config).register(register).start().await.unwrap();
    Fixture { _db: db, node }
}

impl Fixture {
    fn url(&self) -> String {
        format!("http://{}/_api/mcp", self.node.addr())
    }

    async fn post(
        &self,
        body: Value,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = reqwest::Client::new()
            .post(self.url())
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    async fn rpc(&self, body: Value, token: &str) -> Value {
        let (status, _, text) = self.post(body, Some(token)).await;
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// The target directory this test binary was built into (`…/target/debug/deps/mcp-…`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary sits in <target>/<profile>/deps")
        .to_owned()
}

/// A virtualenv with the pinned client, made once per target directory; concurrent test
/// processes wait on the lock instead of installing twice.
fn python_with_mcp() -> PathBuf {
    let target = target_dir();
    std::fs::create_dir_all(&target).unwrap();
    let venv = target.join("mcp-venv");
    let python = venv.join("bin/python");
    let pin = venv.join("forge-pin");
    let script = format!(
        "set -e\n\
         if [ \"$(cat '{pin}' 2>/dev/null)\" != '{package}' ]; then\n\
           rm -rf '{venv}'\n\
           python3 -m venv '{venv}'\n\
           '{venv}/bin/pip' install --quiet --disable-pip-version-check '{package}'\n\
           echo '{package}' > '{pin}'\n\
         fi\n",
        pin = pin.display(),
        venv = venv.display(),
        package = MCP_PACKAGE,
    );
    let status = Command::new("flock")
        .arg(target.join("mcp-venv.lock"))
        .args(["sh", "-c", &script])
        .status()
        .expect("run flock (util-linux) and python3 -m venv");
    assert!(status.success(), "installing {MCP_PACKAGE} failed");
    python
}

/// The conversation, as an MCP client application has it; prints what it saw as JSON.
const CONVERSATION: &str = r#"
import asyncio, json, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import McpError

async def main(url, token):
    seen = {}
    http = create_mcp_http_client(headers={"Authorization": "Bearer " + token})
    async with http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                seen["protocol"] = init.protocolVersion
                seen["server"] = init.serverInfo.name
                seen["tools_capability"] = init.capabilities.tools is not None
                await session.send_ping()
                tools = await session.list_tools()
                seen["tools"] = [t.model_dump(exclude_none=True) for t in tools.tools]
                added = await session.call_tool("notes.add", {"text": "hello from mcp"})
                seen["added"] = added.model_dump(exclude_none=True)
                await session.call_tool("notes.add", {"text": "another"})
                found = await session.call_tool("notes.search", {"query": "mcp"})
                seen["found"] = found.model_dump(exclude_none=True)
                refused = await session.call_tool("refuse", {})
                seen["refused"] = refused.model_dump(exclude_none=True)
                for name, arguments in [
                    ("notes.search", {"query": 7}),
                    ("notes.search", {"query": "x", "limit": "ten"}),
                    ("notes.add", {}),
                    ("notes.add", {"text": "x", "colour": "red"}),
                    ("no.such.tool", {}),
                ]:
                    try:
                        await session.call_tool(name, arguments)
                        seen.setdefault("invalid", []).append(None)
                    except McpError as e:
                        seen.setdefault("invalid", []).append(e.error.model_dump(exclude_none=True))
    print(json.dumps(seen))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_real_mcp_client_lists_and_calls_tools() {
    let python = tokio::task::spawn_blocking(python_with_mcp).await.unwrap();
    let f = start().await;
    let user = Uuid::new_v4();
    let output = tokio::process::Command::new(&python)
        .args(["-c", CONVERSATION, &f.url(), &token(user, None, &[])])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the client failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("the client printed no JSON ({e}):\n{stderr}"));

    assert_eq!(seen["protocol"], "2025-11-25");
    assert_eq!(seen["server"], "forge");
    assert_eq!(seen["tools_capability"], true);

    let tools = seen["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["notes.add", "notes.queue", "notes.search", "refuse"]
    );
    assert_eq!(tools[0]["title"], "Add a note");
    assert_eq!(tools[0]["description"], "Adds a note for the caller.");
    assert_eq!(tools[0]["annotations"]["readOnlyHint"], false);
    assert_eq!(tools[2]["annotations"]["readOnlyHint"], true);
    assert_eq!(tools[2]["inputSchema"]["required"], json!(["query"]));
    assert_eq!(
        tools[2]["inputSchema"]["properties"]["query"],
        json!({"type": "string"})
    );

    assert_eq!(seen["added"]["isError"], false);
    assert_eq!(seen["added"]["structuredContent"]["text"], "hello from mcp");
    let text = seen["added"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["text"],
        "hello from mcp"
    );
    // A list is not an object: `structuredContent` wraps it.
    assert_eq!(
        seen["found"]["structuredContent"],
        json!({"result": ["hello from mcp"]})
    );
    assert_eq!(seen["found"]["content"][0]["text"], r#"["hello from mcp"]"#);
    assert_eq!(seen["refused"]["isError"], true);
    assert_eq!(
        seen["refused"]["content"][0]["text"],
        "FORBIDDEN: not today"
    );

    let invalid = seen["invalid"].as_array().unwrap();
    for error in invalid {
        assert_eq!(error["code"], -32602, "{error}");
    }
    assert_eq!(invalid[0]["data"]["field"], "query");
    assert_eq!(invalid[1]["data"]["field"], "limit");
    assert!(
        invalid[2]["message"].as_str().unwrap().contains("text"),
        "{}",
        invalid[2]
    );
    assert!(
        invalid[3]["message"].as_str().unwrap().contains("colour"),
        "{}",
        invalid[3]
    );
    assert!(invalid[4]["message"]
        .as_str()
        .unwrap()
        .contains("no.such.tool"));

    // Nothing ran for the invalid calls: two notes, both the caller's.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notes WHERE owner = $1")
        .bind(user)
        .fetch_one(f._db.pool())
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_protocol_over_raw_http() {
    let f = start().await;
    let good = token(Uuid::new_v4(), None, &[]);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}});

    // Same auth as a non-public RPC: no token or a bad one is 401, and nothing runs.
    let (status, headers, text) = f.post(initialize.clone(), None).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], -32001);
    let (status, _, _) = f.post(initialize.clone(), Some("not-a-jwt")).await;
    assert_eq!(status, 401);

    let body = f.rpc(initialize, &good).await;
    assert_eq!(body["id"], 1);
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    let old = json!({"jsonrpc": "2.0", "id": "a", "method": "initialize",
        "params": {"protocolVersion": "2025-03-26"}});
    assert_eq!(
        f.rpc(old, &good).await["result"]["protocolVersion"],
        "2025-03-26"
    );
    let future = json!({"jsonrpc": "2.0", "id": 2, "method": "initialize",
        "params": {"protocolVersion": "2999-01-01"}});
    assert_eq!(
        f.rpc(future, &good).await["result"]["protocolVersion"],
        "2025-11-25"
    );

    // Notifications and client responses: 202 without a body.
    let (status, _, text) = f
        .post(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            Some(&good),
        )
        .await;
    assert_eq!((status, text.as_str()), (202, ""));

    // A batch answers its requests, in order, and skips its notifications.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "notes.search", "arguments": {"query": "x"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        {"jsonrpc": "1.0", "id": 4, "method": "ping"},
    ]);
    let body = f.rpc(batch, &good).await;
    let answers = body.as_array().unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
    assert_eq!(
        answers[1]["result"]["structuredContent"],
        json!({"result": []})
    );
    assert_eq!(answers[2]["error"]["code"], -32601);
    assert_eq!(answers[3]["error"]["code"], -32600);

    // Arguments that are not an object, and a body that is not JSON.
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "notes.add", "arguments": [1]}});
    assert_eq!(f.rpc(call, &good).await["error"]["code"], -32602);
    let response = reqwest::Client::new()
        .post(f.url())
        .bearer_auth(&good)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);

    // JSON only; an unknown protocol version header; no server stream on GET.
    let response = reqwest::Client::new()
        .post(f.url())
        .bearer_auth(&good)
        .header("accept", "text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 406);
    let response = reqwest::Client::new()
        .post(f.url())
        .bearer_auth(&good)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = reqwest::Client::new()
        .get(f.url())
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

/// A tool that changes state is a mutation in all but name: its writes and dispatches
/// commit together, or not at all; and its request has an id, like an RPC call.
#[tokio::test(flavor = "multi_thread")]
async fn a_tool_writes_and_dispatches_in_one_transaction_under_a_request_id() {
    let fixture = start().await;
    let token = token(Uuid::new_v4(), None, &[]);
    let call = |text: &str, fail: bool| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "notes.queue", "arguments": {"text": text, "fail": fail}}})
    };
    let answer = fixture.rpc(call("kept", false), &token).await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let job: Uuid =
        serde_json::from_value(answer["result"]["structuredContent"]["job"].clone()).unwrap();
    let answer = fixture.rpc(call("dropped", true), &token).await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let pool = fixture._db.pool();
    let notes: Vec<String> = sqlx::query_scalar("SELECT text FROM notes ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(notes, ["kept"], "the failed call wrote nothing");
    let jobs: Vec<(Uuid, Value)> =
        sqlx::query_as("SELECT id, input FROM forge_jobs WHERE name = 'index'")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        [(job, json!({"text": "kept"}))],
        "nor queued anything"
    );

    let (_, headers, _) = fixture
        .post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
            Some(&token),
        )
        .await;
    assert!(headers.get("x-request-id").is_some(), "{headers:?}");
    let response = reqwest::Client::new()
        .post(fixture.url())
        .header("accept", "application/json")
        .header("x-request-id", "trace-42")
        .bearer_auth(&token)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    fixture.node.shutdown().await.unwrap();
}
