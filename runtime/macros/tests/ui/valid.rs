// Every attribute with its options; the items are left exactly as written.

pub struct QueryContext;

#[forge::query(public, cache = "30s", tables("a", "b"), timeout = "5s")]
pub async fn list(_ctx: &QueryContext, limit: i32) -> i32 {
    limit
}

#[forge::mutation(transactional = false, timeout = "2s")]
pub async fn save() {}

#[forge::job(retry(max_attempts = 5, backoff = "linear", base = "1s", max = "1m"), queue = "mail", priority = -1)]
pub async fn send() {}

#[forge::cron("0 9 * * *", timezone = "Europe/Berlin", catch_up = 3)]
pub async fn morning() {}

#[forge::cron(every = "15m")]
pub async fn often() {}

#[forge::workflow(name = "onboarding", version = "2026-03", active, timeout = "60d")]
pub async fn onboard() {}

#[forge::daemon(replicated, restart = "1s")]
pub async fn watch() {}

#[forge::webhook(path = "/hooks/stripe", signature = hmac_sha256("Stripe-Signature", "STRIPE_SECRET"), idempotency = "header:Idempotency-Key")]
pub async fn stripe() {}

#[forge::mcp_tool(name = "tickets.list", title = "List tickets", read_only)]
pub async fn tickets() {}

#[forge::model(table = "users")]
pub struct User {
    pub id: i64,
}

#[forge::model]
pub enum Role {
    Member,
}

fn main() {
    let _ = (list(&QueryContext, 1), save(), User { id: 1 }, Role::Member);
}
