//! `orderstream fraud train|evaluate`: fit the fraud model on a lake's
//! labelled orders, and judge a model against a lake's labels.
//!
//! Both read the orders in `placed_at` order through the same event-time
//! features the processor computes live, so what is measured here is what
//! the screen does. Labels for training: `fraud_labels` (the seed's ground
//! truth, decoys included), else a review's outcome (rejected as fraud or
//! approved), else honest. An evaluation judges against the ground truth
//! alone when the lake has one (a review is the screen's own verdict seen
//! again), and against reviews otherwise.

use std::path::PathBuf;

use analytics::query::QueryLimits;
use analytics::store::DataStore;
use anyhow::{Context, Result, bail};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use clap::{Args, Subcommand};
use fraud::evaluate::Evaluation;
use fraud::train::Sample;
use fraud::{FeatureState, FraudModel, OrderFacts};

#[derive(Subcommand, Debug)]
pub enum FraudCommand {
    /// Fit a model on a lake's labelled orders and write it as a file.
    Train(TrainArgs),
    /// Score a lake's orders with a model and compare with their labels.
    Evaluate(EvaluateArgs),
}

#[derive(Args, Debug, Clone)]
pub struct LakeArgs {
    /// The lake (a directory or a store URL).
    #[arg(long = "data", env = "ORDERSTREAM_ANALYTICS_DATA", default_value = analytics::store::DEFAULT_LAKE)]
    pub data: String,
    /// Memory pool for reading the orders, in MiB.
    #[arg(long, default_value_t = 4096)]
    pub memory_mib: usize,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// Where the model file goes.
    #[arg(long, default_value = "fraud-model.json")]
    pub out: PathBuf,
    /// The model's version name (default: `lr-` and today's date).
    #[arg(long)]
    pub version: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// The model file (default: the built-in model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Flag above this score (default: the model's threshold).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub threshold: Option<u8>,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: FraudCommand) -> Result<()> {
    match command {
        FraudCommand::Train(args) => train(args).await,
        FraudCommand::Evaluate(args) => evaluate(args).await,
    }
}

/// One order as the lake holds it, with its label.
struct LabelledOrder {
    customer_id: String,
    placed_at_ms: i64,
    amount_cents: i64,
    ip: Option<std::net::IpAddr>,
    address_key: Option<u64>,
    pattern: Option<String>,
    fraud: bool,
    reviewed: bool,
}

/// Every order of the lake in `placed_at` order, labelled.
async fn labelled_orders(lake: &LakeArgs, reviews_with_labels: bool) -> Result<Vec<LabelledOrder>> {
    let store = DataStore::open(&lake.data)?;
    let limits = QueryLimits { memory_bytes: lake.memory_mib << 20, ..QueryLimits::default() };
    let (ctx, tables) = analytics::query::session(&store, &limits).await?;
    if !tables.iter().any(|t| t.name == "orders") {
        bail!("{} holds no orders table", store.url());
    }
    let has = |name: &str| tables.iter().any(|t| t.name == name);
    let labels = if has("fraud_labels") {
        "SELECT order_id, min(pattern) AS pattern, bool_or(coalesce(is_fraud, true)) AS is_fraud FROM fraud_labels GROUP BY order_id"
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS order_id, CAST(NULL AS VARCHAR) AS pattern, CAST(NULL AS BOOLEAN) AS is_fraud WHERE false"
    };
    let reviews = if has("order_events") && (reviews_with_labels || !has("fraud_labels")) {
        use schemas::OrderStatus::{Cancelled, Flagged, Reserved};
        use schemas::sql::SqlLiteral;
        format!(
            "SELECT order_id, bool_or(reason = {}) AS rejected FROM order_events \
             WHERE from_status = {} AND status IN {} GROUP BY order_id",
            schemas::CancelReason::FraudRejected.sql(),
            Flagged.sql(),
            schemas::sql::list([Cancelled, Reserved]),
        )
    } else {
        "SELECT CAST(NULL AS VARCHAR) AS order_id, CAST(NULL AS BOOLEAN) AS rejected WHERE false".to_string()
    };
    let sql = format!(
        "SELECT o.customer_id, o.placed_at, CAST(o.total * 100 AS BIGINT) AS cents, o.client_ip, o.address_key, \
                l.pattern, l.is_fraud, r.rejected \
         FROM orders o LEFT JOIN ({labels}) l ON l.order_id = o.order_id \
                       LEFT JOIN ({reviews}) r ON r.order_id = o.order_id \
         ORDER BY o.placed_at, o.order_id"
    );
    let batches = analytics::query::run(&ctx, &sql).await.context("reading the labelled orders")?;
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in &batches {
        let customer = batch.column(0).as_string::<i32>();
        let placed = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        let cents = batch.column(2).as_primitive::<Int64Type>();
        let ip = batch.column(3).as_string::<i32>();
        let address = batch.column(4).as_string::<i32>();
        let pattern = batch.column(5).as_string::<i32>();
        let is_fraud = batch.column(6).as_boolean();
        let rejected = batch.column(7).as_boolean();
        for row in 0..batch.num_rows() {
            let labelled = !is_fraud.is_null(row);
            let reviewed = !labelled && !rejected.is_null(row);
            out.push(LabelledOrder {
                customer_id: customer.value(row).to_string(),
                placed_at_ms: placed.value(row) / 1_000,
                amount_cents: if cents.is_null(row) { 0 } else { cents.value(row) },
                ip: (!ip.is_null(row)).then(|| ip.value(row).parse().ok()).flatten(),
                address_key: (!address.is_null(row))
                    .then(|| u64::from_str_radix(address.value(row), 16).ok())
                    .flatten(),
                pattern: (!pattern.is_null(row)).then(|| pattern.value(row).to_string()),
                fraud: (labelled && is_fraud.value(row)) || (reviewed && rejected.value(row)),
                reviewed,
            });
        }
    }
    Ok(out)
}

/// Each order's features, computed in order as the live screen would.
fn featurise(orders: &[LabelledOrder]) -> Vec<[f64; fraud::features::FEATURE_COUNT]> {
    let mut state = FeatureState::default();
    orders
        .iter()
        .map(|o| {
            let facts = OrderFacts {
                customer_id: &o.customer_id,
                placed_at_ms: o.placed_at_ms,
                amount_cents: o.amount_cents,
                ip: o.ip,
                address_key: o.address_key,
            };
            state.observe(&facts).features()
        })
        .collect()
}

async fn train(args: TrainArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let orders = labelled_orders(&args.lake, true).await?;
    let features = featurise(&orders);
    let samples: Vec<Sample> = orders
        .iter()
        .zip(features)
        .map(|(o, features)| Sample { features, fraud: o.fraud, reviewed: o.reviewed })
        .collect();
    let version = args.version.unwrap_or_else(|| format!("lr-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")));
    let model = fraud::train::fit(&samples, &version, &args.lake.data)?;
    std::fs::write(&args.out, model.to_json()? + "\n").with_context(|| format!("writing {}", args.out.display()))?;
    let summary = model.trained_on.as_ref();
    println!(
        "model {} → {}: {} orders ({} fraud, {} labelled by review), threshold {}, on its training data precision {:.3} recall {:.3}, in {:.1} s",
        model.version,
        args.out.display(),
        orders.len(),
        summary.map_or(0, |s| s.fraud),
        summary.map_or(0, |s| s.reviewed),
        model.threshold,
        summary.map_or(0.0, |s| s.precision),
        summary.map_or(0.0, |s| s.recall),
        started.elapsed().as_secs_f64()
    );
    for (name, weight) in model.features.iter().zip(&model.weights) {
        println!("  {name:<24} {weight:>8.3}");
    }
    Ok(())
}

async fn evaluate(args: EvaluateArgs) -> Result<()> {
    let model = match &args.model {
        Some(path) => FraudModel::load(path)?,
        None => FraudModel::builtin()?,
    };
    let orders = labelled_orders(&args.lake, false).await?;
    let features = featurise(&orders);
    let mut evaluation = Evaluation::new(args.threshold.unwrap_or(model.threshold));
    for (o, x) in orders.iter().zip(&features) {
        let score = (model.probability(x) * 100.0).round() as u8;
        evaluation.add(score, o.pattern.as_deref(), o.fraud);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
        return Ok(());
    }
    let c = &evaluation.overall;
    println!(
        "model {} at threshold {} on {}: {} orders, {} fraud; precision {:.3}, recall {:.3}, flagged {:.2}% of orders",
        model.version,
        evaluation.threshold,
        args.lake.data,
        c.orders(),
        c.true_positive + c.false_negative,
        c.precision(),
        c.recall(),
        100.0 * c.flagged_share()
    );
    println!(
        "{:<26} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "pattern",
        "orders",
        schemas::OrderStatus::Flagged.as_str(),
        "missed",
        "passed",
        "caught"
    );
    for (pattern, c) in &evaluation.by_pattern {
        let fraud = c.true_positive + c.false_negative;
        let caught = if fraud > 0 { format!("{:.3}", c.recall()) } else { "-".to_string() };
        println!(
            "{pattern:<26} {:>8} {:>8} {:>8} {:>8} {caught:>8}",
            c.orders(),
            c.true_positive + c.false_positive,
            c.false_negative,
            c.true_negative
        );
    }
    Ok(())
}
