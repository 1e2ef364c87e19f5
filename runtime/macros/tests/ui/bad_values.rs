#[forge::query(timeout = "5 minutes")]
pub async fn slow() {}

#[forge::cron("0 9 * * *", every = "1m")]
pub async fn twice() {}

#[forge::webhook(signature = hmac_sha256("X-Sig", "SECRET"))]
pub async fn no_path() {}

#[forge::mutation(rate_limit = "20/min")]
pub async fn chatty() {}

#[forge::mcp_tool(rate_limit = "0/s")]
pub async fn silent() {}

#[forge::query(cache = "0s")]
pub async fn never_cached() {}

#[forge::query(cache = "-30s")]
pub async fn cached_backwards() {}

fn main() {}
