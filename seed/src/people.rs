//! Who the seeded customers are, so their orders look like a person's: a
//! home address, a home and a mobile IP, sometimes a move, an office. The
//! fraud patterns and the honest decoys are told apart only by behaviour
//! (the scorer never reads the labels).

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::Address;

use crate::SeedConfig;
use crate::catalog::CITIES;

/// One regular customer's stable traits, derived from the seed and the
/// customer's index alone (so every day's generator agrees on them).
pub struct Profile {
    pub home: Address,
    pub home_ip: std::net::IpAddr,
    pub mobile_ip: std::net::IpAddr,
    pub office_ip: std::net::IpAddr,
    /// 2% of customers move house once: from then, a new address and a new
    /// home connection.
    pub moved: Option<(i64, Address, std::net::IpAddr)>,
}

/// A public-looking IPv4 address.
pub fn random_ip(rng: &mut impl Rng) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        rng.random_range(11..223),
        rng.random(),
        rng.random(),
        rng.random_range(1..255),
    ))
}

pub fn random_address(rng: &mut impl Rng, city: usize) -> Address {
    let (name, country) = CITIES[city % CITIES.len()];
    Address {
        line1: format!(
            "{} {} St",
            rng.random_range(1..9999),
            ["Main", "Oak", "Pine", "Elm", "Lake", "Hill"][rng.random_range(0..6)]
        ),
        line2: None,
        city: name.to_string(),
        region: None,
        postal_code: format!("{:05}", rng.random_range(10000..99999)),
        country: country.to_string(),
    }
}

/// The office IPs: colleagues share one.
pub const OFFICES: u64 = 400;

pub fn office_ip(config: &SeedConfig, office: u64) -> std::net::IpAddr {
    random_ip(&mut ChaCha8Rng::seed_from_u64(config.seed ^ 0x0FF1_CE00 ^ office.wrapping_mul(0x9E37_79B9)))
}

pub fn office_of(customer: usize) -> u64 {
    (customer as u64).wrapping_mul(0x2545_F491_4F6C_DD1D) % OFFICES
}

pub fn profile(config: &SeedConfig, customer: usize) -> Profile {
    let mut rng =
        ChaCha8Rng::seed_from_u64(config.seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (customer as u64) ^ (1 << 62));
    let home = random_address(&mut rng, customer);
    let home_ip = random_ip(&mut rng);
    let mobile_ip = random_ip(&mut rng);
    let moved = if rng.random::<f64>() < 0.02 {
        let start = Utc.from_utc_datetime(&config.start().and_hms_opt(0, 0, 0).unwrap_or_default());
        let at = start + ChronoDuration::seconds(rng.random_range(0..i64::from(config.days) * 86_400));
        Some((at.timestamp_millis(), random_address(&mut rng, customer), random_ip(&mut rng)))
    } else {
        None
    };
    Profile { home, home_ip, mobile_ip, office_ip: office_ip(config, office_of(customer)), moved }
}

impl Profile {
    /// Where the customer lives at `at_ms`, their home IP then, and whether
    /// they moved within the last two weeks.
    pub fn home_at(&self, at_ms: i64) -> (&Address, std::net::IpAddr, bool) {
        match &self.moved {
            Some((when, address, ip)) if at_ms >= *when => (address, *ip, at_ms - when < 14 * 86_400_000),
            _ => (&self.home, self.home_ip, false),
        }
    }
}

/// The drop addresses fraud rings ship to in week `week` of the seed: a
/// dozen, in different cities, reused all week.
pub fn drop_addresses(config: &SeedConfig, week: u32) -> Vec<Address> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xD809_0000 ^ (u64::from(week) << 20));
    (0..12).map(|k| random_address(&mut rng, k * 5)).collect()
}
