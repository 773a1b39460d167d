//! `orderstream loadgen`: open-loop load at a target rate.
//!
//! Request `i` is due at `t0 + i / rate` whatever happened before it, and its
//! latency is measured from that intended time, so a stalled server shows up
//! as latency instead of silently lowering the offered load (no coordinated
//! omission). Each connection is one HTTP/1.1 keep-alive client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;

// Per-request choices hash (seed, i), so the same seed sends the same mix.
use processor::workers::splitmix64 as mix;

#[derive(Args, Debug, Clone)]
pub struct LoadgenArgs {
    /// Base URL of the ingest API.
    #[arg(long, env = "ORDERSTREAM_TARGET", default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Requests per second to offer.
    #[arg(long, env = "ORDERSTREAM_RATE", default_value_t = 1000.0)]
    pub rate: f64,
    /// How long to offer load: seconds, or with a unit (`500ms`, `30s`, `2m`).
    #[arg(long, env = "ORDERSTREAM_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Concurrent keep-alive connections (the most requests in flight).
    #[arg(long, env = "ORDERSTREAM_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,
    /// Share of requests that repeat an earlier request (same key and body): expect 200 or 202.
    #[arg(long, env = "ORDERSTREAM_DUPLICATE_RATIO", default_value_t = 0.0)]
    pub duplicate_ratio: f64,
    /// Share of requests with an invalid body: expect 422.
    #[arg(long, env = "ORDERSTREAM_INVALID_RATIO", default_value_t = 0.0)]
    pub invalid_ratio: f64,
    /// Send no Idempotency-Key (duplicates then cannot be recognised).
    #[arg(long, env = "ORDERSTREAM_NO_IDEMPOTENCY_KEYS")]
    pub no_idempotency_keys: bool,
    /// Distinct customers and products the orders draw from.
    #[arg(long, env = "ORDERSTREAM_CUSTOMERS", default_value_t = 10_000)]
    pub customers: u64,
    #[arg(long, env = "ORDERSTREAM_PRODUCTS", default_value_t = 1_000)]
    pub products: u64,
    /// Flash-sale mode: every order buys one unit of this product, each
    /// from a different customer.
    #[arg(long, env = "ORDERSTREAM_FLASH_SALE")]
    pub flash_sale: Option<String>,
    /// Seed of the request mix (the same seed sends the same bodies).
    #[arg(long, env = "ORDERSTREAM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Print the report as JSON (for benchmarks).
    #[arg(long, env = "ORDERSTREAM_JSON")]
    pub json: bool,
    /// Every line at this unit price (e.g. the catalog's, which the engine
    /// enforces); default: a price drawn per line from 1.99 to 99.99.
    #[arg(long, env = "ORDERSTREAM_UNIT_PRICE")]
    pub unit_price: Option<String>,
    /// A producer API key, sent as `Authorization: Bearer` on every order
    /// (needed once any key exists).
    #[arg(long, env = "ORDERSTREAM_API_KEY")]
    pub api_key: Option<String>,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 10s"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err("duration must be positive".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fresh,
    Duplicate,
    Invalid,
}

/// A run's figures while it runs, for a watcher (the dashboard's load-test
/// panel), and a way to stop it early.
pub struct Progress {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    stop: AtomicBool,
    /// Latency and answers, under one lock: one acquisition per request.
    answered: Mutex<(Histogram<u64>, BTreeMap<u16, u64>)>,
}

/// What [`Progress`] shows at one moment.
#[derive(Serialize)]
pub struct ProgressView {
    pub completed: u64,
    pub errors: u64,
    pub latency_ms: Percentiles,
    pub statuses: BTreeMap<u16, u64>,
}

impl Progress {
    pub fn new() -> Result<Progress> {
        Ok(Progress {
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            answered: Mutex::new((histogram()?, BTreeMap::new())),
        })
    }

    /// Asks the run to send nothing more (requests in flight finish).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn view(&self) -> ProgressView {
        let answered = self.answered.lock().unwrap_or_else(PoisonError::into_inner);
        ProgressView {
            completed: self.completed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_ms: Percentiles::of(&answered.0),
            statuses: answered.1.clone(),
        }
    }

    fn record(&self, latency_micros: u64, status: Option<u16>) {
        {
            let mut answered = self.answered.lock().unwrap_or_else(PoisonError::into_inner);
            answered.0.saturating_record(latency_micros);
            if let Some(status) = status {
                *answered.1.entry(status).or_default() += 1;
            }
        }
        if status.is_none() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.completed.fetch_add(1, Ordering::Relaxed);
    }
}

struct Plan {
    args: LoadgenArgs,
    progress: Option<Arc<Progress>>,
    run_id: u64,
    host: String,
    addr: String,
    start: Instant,
    total: u64,
    next: AtomicU64,
    /// `Bearer <key>`, built once.
    authorization: Option<String>,
}

impl Plan {
    /// What request `i` is: its kind, its Idempotency-Key, and its body.
    fn request(&self, i: u64) -> (Kind, Option<String>, String) {
        let a = &self.args;
        let kind = self.kind_of(i);
        let source = match kind {
            Kind::Duplicate => {
                // Repeat one of the last 100 requests, valid ones only.
                let mut j = i - 1 - (mix(mix(a.seed ^ mix(i))) % i.min(100));
                while j > 0 && self.kind_of(j) != Kind::Fresh {
                    j -= 1;
                }
                j
            }
            Kind::Fresh | Kind::Invalid => i,
        };
        let key = (!a.no_idempotency_keys).then(|| format!("lg-{:x}-{source}", self.run_id));
        (kind, key, self.body(source, kind == Kind::Invalid))
    }

    fn kind_of(&self, i: u64) -> Kind {
        let draw = unit(mix(self.args.seed ^ mix(i)));
        if draw < self.args.invalid_ratio {
            Kind::Invalid
        } else if draw < self.args.invalid_ratio + self.args.duplicate_ratio && i > 0 && !self.args.no_idempotency_keys
        {
            // Without keys a repeat cannot be recognised: it is a fresh order.
            Kind::Duplicate
        } else {
            Kind::Fresh
        }
    }

    fn body(&self, i: u64, invalid: bool) -> String {
        if let Some(product) = &self.args.flash_sale {
            let quantity = if invalid { 0 } else { 1 };
            return format!(
                r#"{{"customer_id":"flash-{:x}-{i}","items":[{{"product_id":{},"quantity":{quantity},"unit_price":"99.00"}}]}}"#,
                self.run_id,
                serde_json::Value::from(product.as_str())
            );
        }
        let r = mix(self.args.seed.wrapping_add(i.wrapping_mul(0x2545_F491_4F6C_DD1D)));
        let customer = r % self.args.customers.max(1);
        let lines = 1 + (r >> 20) % 4;
        let first_product = (r >> 24) % self.args.products.max(1);
        let mut items = Vec::with_capacity(lines as usize);
        for k in 0..lines {
            let product = (first_product + k) % self.args.products.max(1);
            let quantity = if invalid && k == 0 { 0 } else { 1 + (mix(r ^ k) % 3) };
            let price = match &self.args.unit_price {
                Some(fixed) => fixed.clone(),
                None => {
                    let cents = 199 + mix(r.wrapping_add(k)) % 9_800;
                    format!("{}.{:02}", cents / 100, cents % 100)
                }
            };
            items.push(format!(r#"{{"product_id":"sku-{product}","quantity":{quantity},"unit_price":"{price}"}}"#));
        }
        // Each customer orders from their own address (10.0.0.0/8), as
        // real shoppers do: a few hundred IPs shared by every customer
        // looked like card testing to the fraud screen.
        format!(
            r#"{{"customer_id":"cust-{customer}","items":[{}],"currency":"USD","payment_method":"card","client_ip":"10.{}.{}.{}"}}"#,
            items.join(","),
            (customer >> 16) & 255,
            (customer >> 8) & 255,
            customer & 255
        )
    }
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    unexpected: u64,
    completed: u64,
    /// Valid first uses of a key: exactly this many orders must be created.
    fresh: u64,
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?)
}

/// Latency from the intended send time, and service time from the actual send.
struct Timings {
    latency: Histogram<u64>,
    service: Histogram<u64>,
}

async fn worker(plan: Arc<Plan>) -> Result<(Timings, Tally)> {
    let mut timings = Timings { latency: histogram()?, service: histogram()? };
    let mut tally = Tally::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let nanos_per_request = 1e9 / plan.args.rate;
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.total || plan.progress.as_ref().is_some_and(|p| p.stop.load(Ordering::Relaxed)) {
            break;
        }
        let intended = plan.start + Duration::from_nanos((i as f64 * nanos_per_request) as u64);
        tokio::time::sleep_until(intended.into()).await;
        let (kind, key, body) = plan.request(i);
        let sent = Instant::now();
        let outcome = async {
            if sender.as_ref().is_none_or(|s| s.is_closed()) {
                sender = Some(connect(&plan.addr).await?);
            }
            let s = sender.as_mut().context("no connection")?;
            s.ready().await?;
            let mut request = hyper::Request::post("/api/orders")
                .header("host", &plan.host)
                .header("content-type", "application/json");
            if let Some(key) = &key {
                request = request.header("idempotency-key", key);
            }
            if let Some(authorization) = &plan.authorization {
                request = request.header("authorization", authorization);
            }
            let response = s.send_request(request.body(Full::new(Bytes::from(body)))?).await?;
            let status = response.status().as_u16();
            response.into_body().collect().await?;
            anyhow::Ok(status)
        }
        .await;
        let micros = |since: Instant| since.elapsed().as_micros().clamp(1, 120_000_000) as u64;
        timings.latency.saturating_record(micros(intended));
        timings.service.saturating_record(micros(sent));
        if let Some(progress) = &plan.progress {
            progress.record(micros(intended), outcome.as_ref().ok().copied());
        }
        tally.completed += 1;
        if kind == Kind::Fresh {
            tally.fresh += 1;
        }
        match outcome {
            Ok(status) => {
                *tally.statuses.entry(status).or_default() += 1;
                // A duplicate can overtake its original, so either may get the
                // 202; the run's total of 202s is checked against `fresh`.
                let keyed = !plan.args.no_idempotency_keys;
                let expected = match kind {
                    Kind::Fresh => status == 202 || (keyed && status == 200),
                    Kind::Duplicate => status == 200 || status == 202,
                    Kind::Invalid => status == 422,
                };
                if !expected {
                    tally.unexpected += 1;
                }
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
    Ok((timings, tally))
}

#[derive(Serialize)]
pub struct Report {
    pub target: String,
    pub target_rate: f64,
    pub duration_s: f64,
    pub connections: usize,
    pub requests: u64,
    pub completed: u64,
    pub elapsed_s: f64,
    pub throughput_rps: f64,
    /// From each request's intended send time: what a user waits, queueing included.
    pub latency_ms: Percentiles,
    /// From the actual send: the server's answer time alone.
    pub service_ms: Percentiles,
    /// Orders the server created (202s) against the valid first uses of a key.
    pub orders_created: u64,
    pub orders_expected: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
    pub unexpected: u64,
}

#[derive(Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            p50: ms(0.5),
            p95: ms(0.95),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1000.0,
            mean: h.mean() / 1000.0,
        }
    }
}

fn split_target(target: &str) -> Result<(String, String)> {
    let Some(rest) = target.strip_prefix("http://") else {
        bail!("--target must be an http:// URL (got {target})");
    };
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    let addr = if host.contains(':') { host.clone() } else { format!("{host}:80") };
    Ok((host, addr))
}

pub async fn run(args: LoadgenArgs) -> Result<()> {
    let json = args.json;
    let report = generate(args, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Offers the load and reports; with `progress`, also shows the figures as
/// they come and stops early when asked.
pub async fn generate(args: LoadgenArgs, progress: Option<Arc<Progress>>) -> Result<Report> {
    if !args.rate.is_finite() || args.rate <= 0.0 || args.connections == 0 {
        bail!("--rate and --connections must be positive");
    }
    if !(0.0..=1.0).contains(&(args.duplicate_ratio + args.invalid_ratio))
        || args.duplicate_ratio < 0.0
        || args.invalid_ratio < 0.0
    {
        bail!("--duplicate-ratio and --invalid-ratio must be between 0 and 1 together");
    }
    let (host, addr) = split_target(&args.target)?;
    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let run_id = mix(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64);
    let plan = Arc::new(Plan {
        args: args.clone(),
        progress,
        run_id,
        host,
        addr,
        start: Instant::now() + Duration::from_millis(50),
        total,
        next: AtomicU64::new(0),
        authorization: args.api_key.as_ref().map(|key| format!("Bearer {key}")),
    });
    let workers: Vec<_> = (0..args.connections).map(|_| tokio::spawn(worker(plan.clone()))).collect();
    let mut latency = histogram()?;
    let mut service = histogram()?;
    let mut tally = Tally::default();
    for handle in workers {
        let (h, t) = handle.await??;
        latency.add(&h.latency)?;
        service.add(&h.service)?;
        tally.fresh += t.fresh;
        for (status, n) in t.statuses {
            *tally.statuses.entry(status).or_default() += n;
        }
        tally.errors += t.errors;
        tally.unexpected += t.unexpected;
        tally.completed += t.completed;
    }
    let elapsed = plan.start.elapsed().as_secs_f64();
    let created = tally.statuses.get(&202).copied().unwrap_or(0);
    // With keys, every valid first use makes exactly one order, whoever wins.
    if !args.no_idempotency_keys && tally.errors == 0 {
        tally.unexpected += created.abs_diff(tally.fresh);
    }
    Ok(Report {
        target: args.target.clone(),
        target_rate: args.rate,
        duration_s: args.duration.as_secs_f64(),
        connections: args.connections,
        requests: total,
        completed: tally.completed,
        elapsed_s: elapsed,
        throughput_rps: tally.completed as f64 / elapsed,
        latency_ms: Percentiles::of(&latency),
        service_ms: Percentiles::of(&service),
        orders_created: created,
        orders_expected: tally.fresh,
        statuses: tally.statuses,
        errors: tally.errors,
        unexpected: tally.unexpected,
    })
}

fn print_report(r: &Report) {
    println!(
        "offered {:.0}/s for {:.1}s over {} connections to {}",
        r.target_rate, r.duration_s, r.connections, r.target
    );
    println!(
        "completed {} of {} requests in {:.2}s: {:.0} req/s",
        r.completed, r.requests, r.elapsed_s, r.throughput_rps
    );
    for (what, l) in
        [("latency from intended send (ms)", &r.latency_ms), ("service time from actual send (ms)", &r.service_ms)]
    {
        println!(
            "{what}: p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            l.p50, l.p95, l.p99, l.p999, l.max, l.mean
        );
    }
    println!("orders created {} (expected {})", r.orders_created, r.orders_expected);
    let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    println!("statuses {}   transport errors: {}   unexpected: {}", statuses.join("  "), r.errors, r.unexpected);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(duplicate_ratio: f64, invalid_ratio: f64) -> Plan {
        Plan {
            progress: None,
            args: LoadgenArgs {
                target: "http://127.0.0.1:1".into(),
                rate: 1.0,
                duration: Duration::from_secs(1),
                connections: 1,
                duplicate_ratio,
                invalid_ratio,
                no_idempotency_keys: false,
                customers: 100,
                products: 50,
                flash_sale: None,
                seed: 7,
                json: false,
                unit_price: None,
                api_key: None,
            },
            authorization: None,
            run_id: 1,
            host: String::new(),
            addr: String::new(),
            start: Instant::now(),
            total: 0,
            next: AtomicU64::new(0),
        }
    }

    #[test]
    fn request_mix_follows_the_ratios_and_bodies_are_valid_json() {
        let p = plan(0.1, 0.2);
        let mut counts = [0u32; 3];
        for i in 0..10_000 {
            let (kind, key, body) = p.request(i);
            counts[kind as usize] += 1;
            let parsed: schemas::CreateOrderRequest = serde_json::from_str(&body).unwrap();
            let valid = schemas::validate_order(&parsed, chrono::Utc::now()).is_ok();
            assert_eq!(valid, kind != Kind::Invalid, "{body}");
            assert!(key.is_some());
        }
        assert!((1_800..2_200).contains(&counts[Kind::Invalid as usize]), "{counts:?}");
        assert!((800..1_200).contains(&counts[Kind::Duplicate as usize]), "{counts:?}");
    }

    #[test]
    fn a_duplicate_repeats_an_earlier_fresh_request_exactly() {
        let p = plan(0.5, 0.0);
        for i in 1..500 {
            let (kind, key, body) = p.request(i);
            if kind == Kind::Duplicate {
                let source: u64 = key.as_deref().unwrap().rsplit('-').next().unwrap().parse().unwrap();
                assert!(source < i);
                assert_eq!(p.request(source).2, body);
            }
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
