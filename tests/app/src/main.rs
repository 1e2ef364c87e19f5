mod cluster;
mod forge_generated;
mod journeys;
mod live;
mod notes;

#[tokio::main]
async fn main() -> forge::Result<()> {
    forge::App::from_env()?
        .register(forge_generated::register)
        .run()
        .await
}
