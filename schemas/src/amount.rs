//! An exact sum of money as the lake stores it: a decimal at
//! [`MONEY_SCALE`] (four places), held as an
//! integer. Read from query answers by its text (never through a float),
//! added in integers, and answered as a decimal string (`"1234.50"`) so no
//! client parses it into a float by accident.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::{MAX_ORDER_TOTAL_MAJOR, MoneyError, parse_decimal};
use crate::money::{MONEY_PRECISION, MONEY_SCALE};

const SCALE: u32 = MONEY_SCALE.unsigned_abs() as u32;
const PER_UNIT: i128 = 10_i128.pow(SCALE);
/// The largest amount read from text, in major units: what fits in the
/// parser's `i64` of minor units at the lake's scale (≈ 9.2 × 10^14), one
/// less so that its fraction cannot overflow either.
const MAX_SUM_MAJOR: i64 = i64::MAX / 10_i64.pow(SCALE) - 1;

/// Money at the lake's scale: `Amount(12_3450)` is 12.345.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(pub i128);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Parses a decimal as a query answers it (`-12.5`, `3`, `0.0001`);
    /// more places than the lake keeps, exponents and words are refused.
    pub fn parse(text: &str) -> Result<Amount, MoneyError> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        // The one decimal parser (`money::parse_decimal`), at the lake's
        // scale and up to the largest sum its integers hold.
        let value = i128::from(parse_decimal(digits, SCALE as u8, MAX_SUM_MAJOR)?.0);
        Ok(Amount(if negative { -value } else { value }))
    }

    /// An amount a user types as a filter: non-negative, at most two
    /// decimals (every currency the shop takes has at most two), at most
    /// the largest order total.
    pub fn parse_filter(text: &str) -> Result<Amount, MoneyError> {
        let minor = parse_decimal(text, 2, MAX_ORDER_TOTAL_MAJOR)?;
        Ok(Amount(i128::from(minor.0) * (PER_UNIT / 100)))
    }

    /// The amount as a SQL literal of the lake's money type.
    pub fn sql(self) -> String {
        format!("CAST('{self}' AS DECIMAL({}, {SCALE}))", MONEY_PRECISION)
    }

    /// For display arithmetic only (a share, a ratio): never for sums.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / PER_UNIT as f64
    }

    /// `self / count`, rounded half away from zero at the lake's scale.
    pub fn mean_over(self, count: u64) -> Option<Amount> {
        let count = i128::from(count);
        if count == 0 {
            return None;
        }
        let doubled = self.0 * 2 / count;
        Some(Amount(doubled / 2 + doubled % 2))
    }
}

/// At least two decimals, up to four when they are not zero: `12.50`,
/// `0.1234`, `-3.00`.
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let per = PER_UNIT.unsigned_abs();
        let frac = format!("{:0width$}", abs % per, width = SCALE as usize);
        let trimmed = frac.trim_end_matches('0');
        let shown = if trimmed.len() < 2 { &frac[..2] } else { trimmed };
        write!(f, "{sign}{}.{shown}", abs / per)
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, other: Amount) -> Amount {
        Amount(self.0 + other.0)
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, other: Amount) {
        self.0 += other.0;
    }
}

impl Sub for Amount {
    type Output = Amount;
    fn sub(self, other: Amount) -> Amount {
        Amount(self.0 - other.0)
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, Add::add)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From a JSON number's own text (a query answer writes decimals as bare
/// numbers) or a string; `null` is not an amount (use `Option<Amount>`).
impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
        Amount::parse(text).map_err(|e| D::Error::custom(format!("{text} is not an amount: {e}")))
    }
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An exact decimal amount in the response's currency, e.g. \"1234.50\""))
            .examples(["1234.50"])
            .into()
    }
}

impl utoipa::ToSchema for Amount {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_query_answers_exactly() {
        assert_eq!(Amount::parse("19.99"), Ok(Amount(199_900)));
        assert_eq!(Amount::parse("-0.0001"), Ok(Amount(-1)));
        assert_eq!(Amount::parse("3"), Ok(Amount(30_000)));
        assert_eq!(Amount::parse("1.23450"), Ok(Amount(12_345)));
        assert!(Amount::parse("1.23456").is_err());
        assert!(Amount::parse("1e3").is_err());
        assert!(Amount::parse("").is_err());
    }

    #[test]
    fn filters_are_non_negative_cents() {
        assert_eq!(Amount::parse_filter("25"), Ok(Amount(250_000)));
        assert_eq!(Amount::parse_filter("-1"), Err(MoneyError::Negative));
        assert!(Amount::parse_filter("0.001").is_err());
    }

    #[test]
    fn shows_at_least_cents() {
        assert_eq!(Amount(199_900).to_string(), "19.99");
        assert_eq!(Amount(30_000).to_string(), "3.00");
        assert_eq!(Amount(12_345).to_string(), "1.2345");
        assert_eq!(Amount(-5_000).to_string(), "-0.50");
    }

    #[test]
    fn reads_bare_numbers_and_strings_from_json() {
        let parsed: Vec<Amount> = serde_json::from_str(r#"[0.1, "0.2", 12345678901234.5678]"#).unwrap();
        assert_eq!(parsed.iter().copied().sum::<Amount>(), Amount(123_456_789_012_348_678));
        assert_eq!(serde_json::to_string(&Amount(3_000)).unwrap(), r#""0.30""#);
    }

    #[test]
    fn the_mean_rounds_half_away_from_zero() {
        assert_eq!(Amount(10).mean_over(4), Some(Amount(3)));
        assert_eq!(Amount(9).mean_over(4), Some(Amount(2)));
        assert_eq!(Amount(10).mean_over(0), None);
    }

    proptest! {
        #[test]
        fn display_then_parse_is_the_identity(v in -1_000_000_000_000_000_i128..1_000_000_000_000_000) {
            prop_assert_eq!(Amount::parse(&Amount(v).to_string()), Ok(Amount(v)));
        }
    }
}
