//! How many orders a seeded day gets, and when: the configuration, the
//! hour of day, the week, holidays and a Black Friday spike.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Utc, Weekday};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Orders per hour of day (UTC), relative: a night low and a 7–10 pm peak.
pub(crate) const HOURLY: [f64; 24] = [
    0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.30, 0.50, 0.70, 0.80, 0.90, 1.00, 1.10, 1.00, 0.90, 0.90, 1.00, 1.10, 1.30,
    1.80, 2.00, 1.90, 1.20, 0.60,
];

#[derive(Clone, Debug)]
pub struct SeedConfig {
    pub seed: u64,
    pub orders: u64,
    pub days: u32,
    /// The last day of history (inclusive).
    pub end: NaiveDate,
    pub products: usize,
    pub customers: usize,
}

impl SeedConfig {
    pub fn new(seed: u64, orders: u64, days: u32, end: NaiveDate) -> Self {
        SeedConfig {
            seed,
            orders,
            days: days.max(1),
            end,
            products: 2_000,
            customers: (orders / 4).clamp(100, 2_000_000) as usize,
        }
    }

    pub fn start(&self) -> NaiveDate {
        self.end - ChronoDuration::days(i64::from(self.days) - 1)
    }

    pub(crate) fn rng(&self, stream: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream)
    }
}

/// Relative order volume of a day: weekly shape, holidays, a yearly swell,
/// a slow trend. Each product gets its share of a day through a skewed
/// pick, so the few popular products have smooth daily demand and the long
/// tail intermittent demand (most days zero), as in a real catalog.
pub fn day_weight(day: NaiveDate, index: u32, days: u32) -> f64 {
    let weekly = match day.weekday() {
        Weekday::Mon | Weekday::Tue => 0.9,
        Weekday::Wed => 0.95,
        Weekday::Thu => 1.0,
        Weekday::Fri => 1.05,
        Weekday::Sat => 1.2,
        Weekday::Sun => 1.15,
    };
    let black_friday = black_friday(day.year());
    let holiday = if day == black_friday {
        4.0
    } else if day == black_friday + ChronoDuration::days(3) {
        3.0 // Cyber Monday
    } else if day > black_friday && day < black_friday + ChronoDuration::days(3) {
        2.0
    } else if day.month() == 12 && day.day() == 25 {
        0.5
    } else if day.month() == 12 && day.day() <= 20 {
        1.4
    } else {
        1.0
    };
    let trend = 1.0 + 0.3 * f64::from(index) / f64::from(days.max(1));
    // A yearly swell: highest in mid-November, lowest in mid-May (±12%),
    // under the holidays, so a forecaster with two years of history has a
    // yearly season to find.
    let season = 2.0 * std::f64::consts::PI * (f64::from(day.ordinal()) - 319.0) / 365.25;
    let yearly = 1.0 + 0.12 * season.cos();
    weekly * holiday * trend * yearly
}

/// The fourth Friday of November.
pub fn black_friday(year: i32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, 11, 1).unwrap_or_default();
    let offset = (Weekday::Fri.num_days_from_monday() + 7 - first.weekday().num_days_from_monday()) % 7;
    first + ChronoDuration::days(i64::from(offset) + 21)
}

/// How many orders each day gets; sums to exactly `config.orders`.
pub fn orders_per_day(config: &SeedConfig) -> Vec<u64> {
    let start = config.start();
    let weights: Vec<f64> =
        (0..config.days).map(|i| day_weight(start + ChronoDuration::days(i64::from(i)), i, config.days)).collect();
    let total: f64 = weights.iter().sum();
    let mut counts: Vec<u64> = weights.iter().map(|w| (config.orders as f64 * w / total).floor() as u64).collect();
    let mut short = config.orders - counts.iter().sum::<u64>();
    let mut i = 0;
    while short > 0 {
        let n = counts.len();
        counts[i % n] += 1;
        short -= 1;
        i += 1;
    }
    counts
}

/// The first instant after the seeded history: later status steps have
/// not happened yet.
pub fn end_of_history(config: &SeedConfig) -> DateTime<Utc> {
    Utc.from_utc_datetime(&(config.end + ChronoDuration::days(1)).and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Late November to Christmas Eve: when loyal customers buy big.
pub(crate) fn holiday_season(day: NaiveDate) -> bool {
    let bf = black_friday(day.year());
    (day >= bf - ChronoDuration::days(7) && day.month() == 11) || (day.month() == 12 && day.day() <= 24)
}
