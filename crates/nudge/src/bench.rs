use clap::Subcommand;
#[derive(Subcommand)]
pub enum Which { Ingest }
pub async fn run(_w: Which) -> anyhow::Result<()> { anyhow::bail!("not yet") }
