//! The order engine's flags, shared by `processor`, `up` and `dashboard`
//! (which attaches the engine's API).

use std::time::Duration;

use clap::Args;
use processor::{RunnerSettings, WorkerSettings};

/// Fulfilment delays: `off` (instant), `disabled` (orders stop at
/// confirmed), or three milliseconds `processing,shipped,delivered`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FulfilmentDelays(pub Option<[Duration; 3]>);

impl std::fmt::Display for FulfilmentDelays {
    /// The form [`parse_delays`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("disabled"),
            Some(delays) if delays == [Duration::ZERO; 3] => f.write_str("off"),
            Some([a, b, c]) => write!(f, "{},{},{}", a.as_millis(), b.as_millis(), c.as_millis()),
        }
    }
}

pub fn parse_delays(text: &str) -> Result<FulfilmentDelays, String> {
    Ok(FulfilmentDelays(match text.trim() {
        "disabled" => None,
        "off" | "0" => Some([Duration::ZERO; 3]),
        list => {
            let parts: Vec<u64> = list
                .split(',')
                .map(|p| p.trim().parse::<u64>().map_err(|_| format!("{p:?} is not milliseconds")))
                .collect::<Result<_, _>>()?;
            let [a, b, c] = parts[..] else {
                return Err("give three delays in ms (processing,shipped,delivered), off, or disabled".into());
            };
            Some([Duration::from_millis(a), Duration::from_millis(b), Duration::from_millis(c)])
        }
    }))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PricingArg {
    Reject,
    Reprice,
    Trust,
}

#[derive(Args, Debug, Clone)]
pub struct ProcessorOptions {
    /// This instance's name (in the engine lease); host and pid by default.
    #[arg(long, env = "ORDERSTREAM_INSTANCE")]
    pub instance: Option<String>,
    /// Orders whose fraud score is above this are flagged for review
    /// (0-100; default: the model's own threshold).
    #[arg(long, env = "ORDERSTREAM_FRAUD_THRESHOLD", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub fraud_threshold: Option<u8>,
    /// A fraud model file written by `orderstream fraud train` (default:
    /// the model built into the binary).
    #[arg(long, env = "ORDERSTREAM_FRAUD_MODEL")]
    pub fraud_model: Option<std::path::PathBuf>,
    /// A submitted unit price that differs from the catalog's: `reject`
    /// cancels the order (`price_mismatch`), `reprice` charges the catalog's,
    /// `trust` charges what was sent. Products not in the catalog keep the
    /// submitted price.
    #[arg(long, env = "ORDERSTREAM_PRICING", default_value = "reject")]
    pub pricing: PricingArg,
    /// How far a submitted unit price may be from the catalog's, in minor
    /// units (cents), and still count as the same (the catalog's is charged).
    #[arg(long, env = "ORDERSTREAM_PRICE_TOLERANCE", default_value_t = 0)]
    pub price_tolerance: u32,
    /// Share of simulated payments declined (0.05 = 5%).
    #[arg(long, env = "ORDERSTREAM_PAYMENT_FAILURE_RATE", default_value_t = WorkerSettings::default().payment_failure_rate)]
    pub payment_failure_rate: f64,
    /// Simulated payment latency in milliseconds.
    #[arg(long, env = "ORDERSTREAM_PAYMENT_LATENCY_MS", default_value_t = WorkerSettings::default().payment_latency.as_millis() as u64)]
    pub payment_latency_ms: u64,
    /// Seed of the simulated payment provider's decisions.
    #[arg(long, env = "ORDERSTREAM_PAYMENT_SEED", default_value_t = WorkerSettings::default().seed)]
    pub payment_seed: u64,
    /// Fulfilment delays in ms `processing,shipped,delivered`, `off` (none), or `disabled`.
    #[arg(long, env = "ORDERSTREAM_FULFILMENT_DELAYS_MS", default_value_t = FulfilmentDelays(WorkerSettings::default().fulfilment_delays), value_parser = parse_delays)]
    pub fulfilment_delays_ms: FulfilmentDelays,
    /// How often the engine snapshots its state, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_SNAPSHOT_INTERVAL_MS", default_value_t = RunnerSettings::DEFAULT_SNAPSHOT_EVERY.as_millis() as u64)]
    pub snapshot_interval_ms: u64,
    /// Products with at most this many available units are low on stock.
    #[arg(long, env = "ORDERSTREAM_LOW_STOCK_THRESHOLD", default_value_t = processor::ApiSettings::default().low_stock_threshold)]
    pub low_stock_threshold: u64,
}

impl ProcessorOptions {
    pub fn config(&self) -> anyhow::Result<processor::ProcessorConfig> {
        let instance = self.instance.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        let mut config = processor::ProcessorConfig::new(instance);
        config.runner.engine.fraud_threshold = self.fraud_threshold;
        config.runner.engine.pricing = match self.pricing {
            PricingArg::Reject => processor::Pricing::Reject,
            PricingArg::Reprice => processor::Pricing::Reprice,
            PricingArg::Trust => processor::Pricing::Trust,
        };
        config.runner.engine.price_tolerance = i64::from(self.price_tolerance);
        if let Some(path) = &self.fraud_model {
            config.runner.engine.fraud_model = std::sync::Arc::new(fraud::FraudModel::load(path)?);
        }
        config.runner.snapshot_every = Duration::from_millis(self.snapshot_interval_ms.max(100));
        config.workers.payment_failure_rate = self.payment_failure_rate.clamp(0.0, 1.0);
        config.workers.payment_latency = Duration::from_millis(self.payment_latency_ms);
        config.workers.seed = self.payment_seed;
        config.workers.fulfilment_delays = self.fulfilment_delays_ms.0;
        Ok(config)
    }

    pub fn api(&self, access: &crate::keys_cli::AccessArgs) -> processor::ApiSettings {
        processor::ApiSettings {
            tracking_ttl: access.tracking_ttl(),
            low_stock_threshold: self.low_stock_threshold,
            ..processor::ApiSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fulfilment_delays_parse() {
        assert_eq!(parse_delays("off"), Ok(FulfilmentDelays(Some([Duration::ZERO; 3]))));
        assert_eq!(parse_delays("disabled"), Ok(FulfilmentDelays(None)));
        assert_eq!(
            parse_delays("1,2,3"),
            Ok(FulfilmentDelays(Some([Duration::from_millis(1), Duration::from_millis(2), Duration::from_millis(3)])))
        );
        assert!(parse_delays("1,2").is_err());
        assert!(parse_delays("soon").is_err());
        for delays in ["off", "disabled", "500,1500,3000"] {
            assert_eq!(parse_delays(delays).unwrap().to_string(), delays);
        }
    }
}
