//! `docflow bench SCENARIO`: the scenarios as the command line names them, each a thin call
//! into its module.

use super::{bench, bench_app, bench_budget, bench_handler};
use crate::telemetry::{self, LogFormat};

/// A benchmark scenario.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// A burst of documents through the app against fake-llm: adaptive budget versus naive policy.
    Budget(bench_budget::BudgetBench),
    /// `POST /api/documents` latency and throughput while the workers are saturated.
    Api(bench_app::ApiBench),
    /// Documents per minute through the whole local app on the offline provider, and where
    /// the time goes.
    Pipeline(bench_app::PipelineBench),
    /// Handler overhead per invocation of `docflow serve` (µs), as the Functions host calls it.
    Handler(bench_handler::HandlerBench),
    /// Durable send+receive+complete throughput and receive latency of the embedded broker.
    Broker(bench::BrokerBench),
}

impl Scenario {
    /// Runs the scenario and prints its figures; returns the exit code.
    pub async fn run(self) -> u8 {
        match self {
            Scenario::Budget(b) => {
                telemetry::init_with_default(LogFormat::Text, "warn");
                bench_budget::run(b).await
            }
            Scenario::Api(b) => {
                telemetry::init_with_default(LogFormat::Text, "warn");
                bench_app::api(b).await
            }
            Scenario::Pipeline(b) => {
                telemetry::init_with_default(LogFormat::Text, "warn");
                bench_app::pipeline(b).await
            }
            Scenario::Handler(b) => bench_handler::run(b).await,
            Scenario::Broker(b) => bench::run(b).await,
        }
    }
}
