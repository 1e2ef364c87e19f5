//! Issued sessions against a real PostgreSQL: a public mutation signs a user in with
//! `ctx.issue_session`, the access token calls a protected query, `POST /_api/auth/refresh`
//! rotates the pair, a reused refresh token revokes its family (also when two uses race),
//! logout revokes, and a failing mutation issues nothing. Passwords hash with argon2id.

use std::time::Duration;

use forge::registry::{decode_args, MutationDef, NoArgs, QueryDef};
use forge::testing::{config, TestClient, TestDatabase};
use forge::{App, MutationContext, QueryContext, Registry, Running};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Deserialize)]
struct SignIn {
    user: Uuid,
    password: String,
    fail: bool,
}

fn register(registry: &mut Registry) {
    registry.mutation(
        MutationDef {
            rate_limit: None,
            name: "sign_in",
            module: "",
            transactional: true,
            public: true,
            timeout_ms: None,
            tables_written: &[],
        },
        |ctx: MutationContext, args| async move {
            let SignIn {
                user,
                password,
                fail,
            } = decode_args(args)?;
            // What an app stores at sign-up and checks at sign-in.
            let stored = forge::auth::hash_password("hunter2")?;
            if !forge::auth::verify_password(&password, &stored)? {
                return Err(forge::Error::Unauthorized("wrong password".into()));
            }
            let session = ctx
                .issue_session(user)
                .roles(&["member"])
                .claim("plan", "pro")
                .ttl(Duration::from_secs(120))
                .await?;
            if fail {
                return Err(forge::Error::Validation("asked to fail".into()));
            }
            Ok(session)
        },
    );
    registry.mutation(
        MutationDef {
            rate_limit: None,
            name: "short_token",
            module: "",
            transactional: true,
            public: true,
            timeout_ms: None,
            tables_written: &[],
        },
        |ctx: MutationContext, args| async move {
            decode_args::<NoArgs>(args)?;
            let user = Uuid::new_v4();
            let token = ctx
                .issue_token(user)
                .tenant(user)
                .roles(&["admin"])
                .sign()?;
            let reserved = ctx.issue_token(user).claim("exp", 1).sign().is_err();
            Ok(json!({"token": token, "user": user, "reserved_refused": reserved}))
        },
    );
    registry.query(
        QueryDef {
            rate_limit: None,
            name: "whoami",
            module: "",
            public: false,
            unscoped: true,
            cache_ms: None,
            timeout_ms: None,
            tables_read: &[],
        },
        |ctx: QueryContext, args| async move {
            decode_args::<NoArgs>(args)?;
            let auth = ctx.auth()?;
            Ok(json!({
                "user": auth.user_id,
                "tenant": auth.tenant_id,
                "roles": auth.roles,
                "plan": auth.claims.get("plan"),
            }))
        },
    );
}

struct Fixture {
    db: TestDatabase,
    node: Running,
    http: reqwest::Client,
}

impl Fixture {
    async fn start() -> Fixture {
        let db = TestDatabase::new().await;
        let node = App::new(config(db.url()))
            .register(register)
            .start()
            .await
            .unwrap();
        Fixture {
            db,
            node,
            http: reqwest::Client::new(),
        }
    }

    async fn sign_in(&self, user: Uuid) -> Value {
        TestClient::new(&self.node)
            .call(
                "sign_in",
                json!({"user": user, "password": "hunter2", "fail": false}),
            )
            .await
            .unwrap()
    }

    async fn whoami(&self, access_token: &Value) -> Result<Value, forge::testing::CallError> {
        TestClient::new(&self.node)
            .token(access_token.as_str().unwrap())
            .call("whoami", json!({}))
            .await
    }

    /// `POST /_api/auth/{what}` with `body`: the status and the envelope.
    async fn auth(&self, what: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("http://{}/_api/auth/{what}", self.node.addr()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn refresh(&self, refresh_token: &Value) -> (u16, Value) {
        self.auth(
            "refresh",
            json!({ "refresh_token": refresh_token }).to_string(),
        )
        .await
    }

    async fn stored(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_session_signs_in_rotates_and_keeps_its_claims() {
    let fx = Fixture::start().await;
    let user = Uuid::new_v4();
    let first = fx.sign_in(user).await;
    assert_eq!(first["expires_in"], 120, "{first}");
    let me = fx.whoami(&first["access_token"]).await.unwrap();
    assert_eq!(
        me,
        json!({"user": user, "tenant": null, "roles": ["member"], "plan": "pro"})
    );
    // Stored hashed: the token the client holds is nowhere in the table.
    let refresh_token = first["refresh_token"].as_str().unwrap();
    let raw: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM forge_refresh_tokens WHERE encode(token_hash, 'hex') = $1",
    )
    .bind(refresh_token)
    .fetch_one(fx.db.pool())
    .await
    .unwrap();
    assert_eq!(raw, 0);

    let (status, body) = fx.refresh(&first["refresh_token"]).await;
    assert_eq!(status, 200, "{body}");
    let second = &body["data"];
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["expires_in"], 120);
    let me = fx.whoami(&second["access_token"]).await.unwrap();
    assert_eq!(me["roles"], json!(["member"]));
    assert_eq!(me["plan"], "pro");
    let family: i64 = fx
        .stored("SELECT count(DISTINCT family_id) FROM forge_refresh_tokens")
        .await;
    assert_eq!(family, 1);
    fx.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let fx = Fixture::start().await;
    let first = fx.sign_in(Uuid::new_v4()).await;
    let (_, body) = fx.refresh(&first["refresh_token"]).await;
    let second = body["data"].clone();
    // A thief replays the first token: refused, and the session is over for everyone.
    let (status, body) = fx.refresh(&first["refresh_token"]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    let (status, body) = fx.refresh(&second["refresh_token"]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["message"], "invalid refresh token");
    let reasons: i64 = fx
        .stored("SELECT count(*) FROM forge_refresh_tokens WHERE revoked_reason = 'reuse'")
        .await;
    assert_eq!(reasons, 2);
    fx.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_concurrent_uses_of_one_token_are_one_rotation_and_one_reuse() {
    let fx = Fixture::start().await;
    let first = fx.sign_in(Uuid::new_v4()).await;
    let (a, b) = tokio::join!(
        fx.refresh(&first["refresh_token"]),
        fx.refresh(&first["refresh_token"])
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{a:?} {b:?}");
    // The winner's new token belongs to the revoked family too.
    let winner = if a.0 == 200 { a.1 } else { b.1 };
    let (status, _) = fx.refresh(&winner["data"]["refresh_token"]).await;
    assert_eq!(status, 401);
    fx.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn logout_revokes_and_is_idempotent() {
    let fx = Fixture::start().await;
    let session = fx.sign_in(Uuid::new_v4()).await;
    let body = json!({ "refresh_token": session["refresh_token"] }).to_string();
    let (status, reply) = fx.auth("logout", body.clone()).await;
    assert_eq!((status, &reply["success"]), (200, &json!(true)), "{reply}");
    let (status, _) = fx.auth("logout", body).await;
    assert_eq!(status, 200);
    let (status, reply) = fx.refresh(&session["refresh_token"]).await;
    assert_eq!(status, 401, "{reply}");
    let reasons: i64 = fx
        .stored("SELECT count(*) FROM forge_refresh_tokens WHERE revoked_reason = 'logout'")
        .await;
    assert_eq!(reasons, 1);
    fx.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_the_envelope() {
    let fx = Fixture::start().await;
    for (body, status) in [
        ("{".to_owned(), 400),
        (json!({"token": "x"}).to_string(), 400),
        (
            json!({"refresh_token": "x".repeat(10_000)}).to_string(),
            400,
        ),
        (json!({"refresh_token": "nope"}).to_string(), 401),
        (json!({"refresh_token": "a".repeat(64)}).to_string(), 401),
    ] {
        let (got, reply) = fx.auth("refresh", body.clone()).await;
        assert_eq!(got, status, "{body:.60}: {reply}");
        assert_eq!(reply["success"], false);
        assert!(reply["request_id"].is_string());
    }
    fx.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_mutation_issues_no_session_and_a_wrong_password_none_either() {
    let fx = Fixture::start().await;
    let client = TestClient::new(&fx.node);
    let failed = client
        .call(
            "sign_in",
            json!({"user": Uuid::new_v4(), "password": "hunter2", "fail": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(failed.code, "VALIDATION_ERROR");
    let wrong = client
        .call(
            "sign_in",
            json!({"user": Uuid::new_v4(), "password": "hunter3", "fail": false}),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.code, "UNAUTHORIZED");
    let stored: i64 = fx.stored("SELECT count(*) FROM forge_refresh_tokens").await;
    assert_eq!(stored, 0);
    fx.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn issued_tokens_carry_tenant_and_roles_and_refuse_reserved_claims() {
    let fx = Fixture::start().await;
    let issued = TestClient::new(&fx.node)
        .call("short_token", json!({}))
        .await
        .unwrap();
    assert_eq!(issued["reserved_refused"], true);
    let me = fx.whoami(&issued["token"]).await.unwrap();
    assert_eq!(me["user"], issued["user"]);
    assert_eq!(me["tenant"], issued["user"]);
    assert_eq!(me["roles"], json!(["admin"]));
    fx.node.shutdown().await.unwrap();
}
