#[forge::query(pubic)]
pub async fn list() {}

#[forge::job(retry(attempts = 3))]
pub async fn send() {}

fn main() {}
