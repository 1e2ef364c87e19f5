// Every attribute with its options on a well-formed item; the items are left exactly as
// written. (The runtime's context types arrive with the runtime; stand-ins suffice here.)

pub struct QueryContext;
pub struct MutationContext;
pub struct JobContext;
pub struct CronContext;
pub struct WorkflowContext;
pub struct DaemonContext;
pub struct WebhookContext;
pub struct McpToolContext;
pub type Result<T> = std::result::Result<T, ()>;

#[forge::query(public, cache = "30s", tables("a", "b"), timeout = "5s")]
pub async fn list(_ctx: &QueryContext, limit: i32) -> Result<i32> {
    Ok(limit)
}

#[forge::mutation(transactional = false, timeout = "2s")]
pub async fn save(_ctx: &MutationContext) -> Result<()> {
    Ok(())
}

#[forge::job(retry(max_attempts = 5, backoff = "linear", base = "1s", max = "1m"), queue = "mail", priority = -1)]
pub async fn send(_ctx: &JobContext) -> Result<()> {
    Ok(())
}

#[forge::cron("0 9 * * *", timezone = "Europe/Berlin", catch_up = 3)]
pub async fn morning(_ctx: &CronContext) -> Result<()> {
    Ok(())
}

#[forge::cron(every = "15m")]
pub async fn often(_ctx: &CronContext) -> Result<()> {
    Ok(())
}

#[forge::workflow(name = "onboarding", version = "2026-03", active, timeout = "60d")]
pub async fn onboard(_ctx: &WorkflowContext) -> Result<()> {
    Ok(())
}

#[forge::daemon(replicated, restart = "1s")]
pub async fn watch(_ctx: &DaemonContext) -> Result<()> {
    Ok(())
}

#[forge::webhook(path = "/hooks/stripe", signature = hmac_sha256("Stripe-Signature", "STRIPE_SECRET"), idempotency = "header:Idempotency-Key")]
pub async fn stripe(_ctx: &WebhookContext) -> Result<()> {
    Ok(())
}

#[forge::mcp_tool(name = "tickets.list", title = "List tickets", read_only)]
pub async fn tickets(_ctx: &McpToolContext) -> Result<()> {
    Ok(())
}

#[forge::model(table = "users")]
pub struct User {
    pub id: i64,
}

#[forge::model]
pub enum Role {
    Member,
}

fn main() {
    let _ = (list(&QueryContext, 1), save(&MutationContext), User { id: 1 }, Role::Member);
}
