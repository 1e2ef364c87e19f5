//! Tokens from an identity provider (`FORGE_JWKS_URL`) against a running node: the key set
//! is served by the test itself over HTTP with keys generated here (RSA, P-256, Ed25519),
//! and the test counts the node's fetches. Rotation, unknown `kid`s (one fetch in flight,
//! negative cache), algorithm confusion, issuer and audience.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use forge::registry::{decode_args, NoArgs, QueryDef};
use forge::testing::{config, TestClient, TestDatabase};
use forge::{App, QueryContext, Registry, Running};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// A signing key and its public JWK.
struct TestKey {
    kid: &'static str,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key's bytes, for forging an HS256 token "signed" with them.
    public: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One RSA key for the whole binary: generating one takes a while in a debug build.
fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let public = private.to_public_key();
        let der = private.to_pkcs1_der().unwrap();
        TestKey {
            kid: "rsa-1",
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
                        "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be())}),
            public: public.n().to_bytes_be(),
        }
    })
}

fn ec_key(kid: &'static str) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    TestKey {
        kid,
        algorithm: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "kid": kid, "crv": "P-256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        public: point,
    }
}

fn ed_key(kid: &'static str) -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    TestKey {
        kid,
        algorithm: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "alg": "EdDSA", "x": b64(&public)}),
        public,
    }
}

fn claims(user: Uuid) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user, "exp": now + 600, "iss": "https://id.test", "aud": "app"})
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// An identity provider's JWKS endpoint: serves `keys`, counts requests.
struct Provider {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(keys: Vec<Value>) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (served, counted) = (served.clone(), counted.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = json!({"keys": *served.lock().unwrap()}).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Provider { url, keys, fetches }
    }

    fn serve(&self, keys: Vec<Value>) {
        *self.keys.lock().unwrap() = keys;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn register(registry: &mut Registry) {
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
            Ok(json!({"user": ctx.user_id()?}))
        },
    );
}

async fn node(db: &TestDatabase, provider: &Provider, secret: bool) -> Running {
    let mut config = config(db.url());
    config.jwks_url = Some(provider.url.clone());
    config.jwt_issuer = Some("https://id.test".into());
    config.jwt_audience = Some("app".into());
    if !secret {
        config.jwt_secret = None;
    }
    App::new(config).register(register).start().await.unwrap()
}

/// `whoami` with `token`: the user id, or the error code and message.
async fn whoami(node: &Running, token: &str) -> Result<Value, (String, String)> {
    TestClient::new(node)
        .token(token)
        .call("whoami", json!({}))
        .await
        .map(|data| data["user"].clone())
        .map_err(|e| (e.code, e.message))
}

#[tokio::test]
async fn provider_tokens_of_every_algorithm_verify_and_keys_rotate() {
    let db = TestDatabase::new().await;
    let (rsa, ec, ed) = (rsa_key(), ec_key("ec-1"), ed_key("ed-1"));
    let provider = Provider::start(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    let node = node(&db, &provider, false).await;
    let user = Uuid::new_v4();
    for key in [rsa, &ec] {
        assert_eq!(
            whoami(&node, &sign(key, &claims(user))).await,
            Ok(json!(user)),
            "{:?}",
            key.algorithm
        );
    }
    assert_eq!(provider.fetches(), 1, "keys are cached");

    // The provider rotates: the EC key is withdrawn, an Ed25519 key appears. A token with
    // the new kid makes the node refetch once (refetches are at least a second apart).
    provider.serve(vec![rsa.jwk.clone(), ed.jwk.clone()]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        whoami(&node, &sign(&ed, &claims(user))).await,
        Ok(json!(user))
    );
    assert_eq!(provider.fetches(), 2);
    // A new token under the withdrawn key is refused, without another fetch so soon.
    let other = Uuid::new_v4();
    let refused = whoami(&node, &sign(&ec, &claims(other))).await;
    assert_eq!(
        refused,
        Err(("UNAUTHORIZED".into(), "invalid token".into()))
    );
    assert_eq!(provider.fetches(), 2);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_kids_fetch_once_then_hit_the_negative_cache() {
    let db = TestDatabase::new().await;
    let ec = ec_key("ec-1");
    let provider = Provider::start(vec![ec.jwk.clone()]).await;
    let node = node(&db, &provider, false).await;
    let stranger = ec_key("made-up");
    let token = sign(&stranger, &claims(Uuid::new_v4()));
    let calls = (0..50).map(|_| whoami(&node, &token));
    let results = futures_util::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(provider.fetches(), 1, "one fetch in flight for 50 requests");
    // Later, still refused from the negative cache, without fetching.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(whoami(&node, &token).await.is_err());
    assert_eq!(provider.fetches(), 1);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn algorithm_confusion_alg_none_issuer_and_audience_are_refused() {
    let db = TestDatabase::new().await;
    let (rsa, ed) = (rsa_key(), ed_key("ed-1"));
    let provider = Provider::start(vec![rsa.jwk.clone(), ed.jwk.clone()]).await;
    let user = Uuid::new_v4();
    let invalid = Err(("UNAUTHORIZED".to_owned(), "invalid token".to_owned()));
    for secret in [false, true] {
        let node = node(&db, &provider, secret).await;
        // HS256 "signed" with the provider's public key, naming its kid.
        for key in [rsa, &ed] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(key.kid.to_owned());
            let forged = jsonwebtoken::encode(
                &header,
                &claims(user),
                &EncodingKey::from_secret(&key.public),
            )
            .unwrap();
            assert_eq!(whoami(&node, &forged).await, invalid, "secret: {secret}");
        }
        // A token that says RS256 but names the Ed25519 key.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(ed.kid.to_owned());
        let mismatched = jsonwebtoken::encode(&header, &claims(user), &rsa.encoding).unwrap();
        assert_eq!(whoami(&node, &mismatched).await, invalid);
        // alg: none.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT","kid":"ed-1"}"#),
            b64(claims(user).to_string().as_bytes())
        );
        assert_eq!(whoami(&node, &none).await, invalid);
        // Wrong issuer, wrong audience, none of either.
        let mut wrong_iss = claims(user);
        wrong_iss["iss"] = json!("https://evil.test");
        let mut wrong_aud = claims(user);
        wrong_aud["aud"] = json!("other-app");
        let mut bare = claims(user);
        bare.as_object_mut().unwrap().remove("iss");
        bare.as_object_mut().unwrap().remove("aud");
        for bad in [wrong_iss, wrong_aud, bare] {
            assert_eq!(whoami(&node, &sign(&ed, &bad)).await, invalid, "{bad}");
        }
        // And the genuine article still passes.
        assert_eq!(
            whoami(&node, &sign(&ed, &claims(user))).await,
            Ok(json!(user))
        );
        node.shutdown().await.unwrap();
    }
}
