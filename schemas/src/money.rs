//! Money as integer minor units. Prices arrive as JSON numbers or decimal
//! strings and are parsed from their text, never through a float, so
//! `0.1 + 0.2` stays exact and an over-precise `19.999` is refused rather
//! than rounded.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The largest unit price accepted, in major units (one million).
pub const MAX_UNIT_PRICE_MAJOR: i64 = 1_000_000;
/// The largest order total accepted, in major units (one billion): above
/// this an order is a bug or an attack, not a purchase.
pub const MAX_ORDER_TOTAL_MAJOR: i64 = 1_000_000_000;

/// Money in the lake: `Decimal128(18, 4)`, room for any currency's minor
/// units and for sums of them.
pub const MONEY_PRECISION: u8 = 18;
pub const MONEY_SCALE: i8 = 4;

/// An amount in a currency's minor units (cents for USD, yen for JPY).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MinorUnits(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("must be a decimal number such as 19.99 or \"19.99\"")]
    NotADecimal,
    #[error("must not be negative")]
    Negative,
    #[error("has more than {max_decimals} decimal places")]
    TooPrecise { max_decimals: u8 },
    #[error("exceeds the maximum of {max}")]
    TooLarge { max: i64 },
}

/// 10^exponent for the exponents ISO 4217 uses (0..=3).
pub fn minor_per_major(exponent: u8) -> i64 {
    10_i64.pow(u32::from(exponent))
}

/// Parses a non-negative decimal such as `19.99`, `"0.5"` or `100` into minor
/// units. Exponent notation, signs, NaN/Infinity, and more decimals than the
/// currency has are refused.
pub fn parse_decimal(text: &str, exponent: u8, max_major: i64) -> Result<MinorUnits, MoneyError> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(MoneyError::Negative);
    }
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(MoneyError::NotADecimal);
    }
    if text.contains('.') && frac_part.is_empty() {
        return Err(MoneyError::NotADecimal);
    }
    let significant_frac = frac_part.trim_end_matches('0');
    if significant_frac.len() > usize::from(exponent) {
        return Err(MoneyError::TooPrecise { max_decimals: exponent });
    }
    let too_large = MoneyError::TooLarge { max: max_major };
    let int_digits = int_part.trim_start_matches('0');
    if int_digits.len() > 15 {
        return Err(too_large);
    }
    let major: i64 = if int_digits.is_empty() { 0 } else { int_digits.parse().map_err(|_| MoneyError::NotADecimal)? };
    if major > max_major {
        return Err(too_large);
    }
    let mut frac: i64 = 0;
    for position in 0..usize::from(exponent) {
        let digit = significant_frac.as_bytes().get(position).map_or(0, |b| i64::from(b - b'0'));
        frac = frac * 10 + digit;
    }
    let minor = major * minor_per_major(exponent) + frac;
    if minor > max_major * minor_per_major(exponent) {
        return Err(too_large);
    }
    Ok(MinorUnits(minor))
}

/// Formats minor units as a plain decimal string with exactly `exponent`
/// decimals: `1999` with exponent 2 is `"19.99"`.
pub fn format_decimal(amount: MinorUnits, exponent: u8) -> String {
    let per = minor_per_major(exponent);
    let sign = if amount.0 < 0 { "-" } else { "" };
    let abs = amount.0.unsigned_abs();
    let per_u = per.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    format!("{sign}{}.{:0width$}", abs / per_u, abs % per_u, width = usize::from(exponent))
}

/// A tax rate in basis points (1/100 of a percent): 1000 is 10%.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate(pub u32);

impl TaxRate {
    /// Tax on `subtotal`, rounded half-up to the minor unit, in integers.
    pub fn tax_on(self, subtotal: MinorUnits) -> MinorUnits {
        let product = i128::from(subtotal.0) * i128::from(self.0);
        let rounded = (product + 5_000) / 10_000;
        MinorUnits(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: i64 = MAX_UNIT_PRICE_MAJOR;

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(parse_decimal("19.99", 2, MAX), Ok(MinorUnits(1999)));
        assert_eq!(parse_decimal("0.1", 2, MAX), Ok(MinorUnits(10)));
        assert_eq!(parse_decimal("100", 2, MAX), Ok(MinorUnits(10000)));
        assert_eq!(parse_decimal("19.990", 2, MAX), Ok(MinorUnits(1999)));
        assert_eq!(parse_decimal("007.50", 2, MAX), Ok(MinorUnits(750)));
        assert_eq!(parse_decimal("0", 2, MAX), Ok(MinorUnits(0)));
        assert_eq!(parse_decimal("1500", 0, MAX), Ok(MinorUnits(1500)));
        assert_eq!(parse_decimal("1.234", 3, MAX), Ok(MinorUnits(1234)));
    }

    #[test]
    fn refuses_what_is_not_money() {
        assert_eq!(parse_decimal("19.999", 2, MAX), Err(MoneyError::TooPrecise { max_decimals: 2 }));
        assert_eq!(parse_decimal("1.5", 0, MAX), Err(MoneyError::TooPrecise { max_decimals: 0 }));
        assert_eq!(parse_decimal("-1", 2, MAX), Err(MoneyError::Negative));
        for bad in ["", "NaN", "Infinity", "1e3", "1.", ".5", "1,5", "+1", "0x10", " . "] {
            assert_eq!(parse_decimal(bad, 2, MAX), Err(MoneyError::NotADecimal), "{bad:?}");
        }
        assert_eq!(parse_decimal("1000000.01", 2, MAX), Err(MoneyError::TooLarge { max: MAX }));
        assert_eq!(parse_decimal("99999999999999999999999", 2, MAX), Err(MoneyError::TooLarge { max: MAX }));
    }

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(format_decimal(MinorUnits(1999), 2), "19.99");
        assert_eq!(format_decimal(MinorUnits(5), 2), "0.05");
        assert_eq!(format_decimal(MinorUnits(1500), 0), "1500");
        assert_eq!(format_decimal(MinorUnits(-250), 2), "-2.50");
        assert_eq!(format_decimal(MinorUnits(1), 3), "0.001");
    }

    #[test]
    fn tax_rounds_half_up_in_integers() {
        // SwiftCart's float tax gave 5.998 on 59.98; we give 6.00.
        assert_eq!(TaxRate(1000).tax_on(MinorUnits(5998)), MinorUnits(600));
        assert_eq!(TaxRate(825).tax_on(MinorUnits(1000)), MinorUnits(83));
        assert_eq!(TaxRate(0).tax_on(MinorUnits(1000)), MinorUnits(0));
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(minor in 0_i64..=MAX * 100, exponent in 0_u8..=3) {
            let max_minor = MAX * minor_per_major(exponent);
            let minor = minor.min(max_minor);
            let text = format_decimal(MinorUnits(minor), exponent);
            prop_assert_eq!(parse_decimal(&text, exponent, MAX), Ok(MinorUnits(minor)));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,24}") {
            let _ = parse_decimal(&text, 2, MAX);
        }
    }
}
