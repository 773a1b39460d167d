//! `orderstream`: one binary, a subcommand per role.

mod analytics_cli;
mod bench_window;
mod cli;
mod customers_cli;
mod dashboard_cli;
mod forecast_cli;
mod fraud_cli;
mod http;
mod keys_cli;
mod load_test;
mod loadgen;
mod nats_args;
mod processor_args;
mod roles;
mod seed_cli;

use anyhow::Result;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, LogFormat};

// Request handling is allocation-heavy (JSON in, JSON out, a message per
// order); mimalloc's thread-local free lists beat glibc's malloc there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("ORDERSTREAM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Up(args) => roles::up(args).await,
        Command::Ingest(args) => roles::ingest(args).await,
        Command::Processor(args) => roles::processor(args).await,
        Command::Catalog { command } => roles::catalog(command).await,
        Command::Keys { command } => keys_cli::run(command).await,
        Command::Streams { command: cli::StreamsCommand::Apply { nats, yes } } => roles::streams_apply(nats, yes).await,
        Command::Audit { nats, allow_unfinished } => roles::audit(nats, allow_unfinished).await,
        Command::Loadgen(args) => loadgen::run(args).await,
        Command::Analytics(args) => analytics_cli::analytics_role(args, server::shutdown_flag()).await,
        Command::Replay(args) => analytics_cli::replay(args).await,
        Command::Seed(args) => seed_cli::seed(args).await,
        Command::Sql(args) => analytics_cli::sql(args).await,
        Command::Forecast(args) => forecast_cli::forecast(args).await,
        Command::Customers(args) => customers_cli::customers(args).await,
        Command::Fraud { command } => fraud_cli::run(command).await,
        Command::Bench { command: cli::BenchCommand::Window(args) } => bench_window::bench_window(args).await,
        Command::Bench { command: cli::BenchCommand::Forecast(args) } => forecast_cli::bench(args).await,
        Command::Bench { command: cli::BenchCommand::Recommendations(args) } => customers_cli::bench(args).await,
        Command::Dashboard(args) => dashboard_cli::dashboard_role(args).await,
    }
}
