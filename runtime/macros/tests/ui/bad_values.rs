#[forge::query(timeout = "5 minutes")]
pub async fn slow() {}

#[forge::cron("0 9 * * *", every = "1m")]
pub async fn twice() {}

#[forge::webhook(signature = hmac_sha256("X-Sig", "SECRET"))]
pub async fn no_path() {}

fn main() {}
