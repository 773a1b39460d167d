//! `orderstream seed`: realistic order history, deterministic for a given
//! `--seed` and `--end`. Customers, products in 50 categories (stock 70%
//! normal, 20% low, 10% out), order values lognormal around $75 with ~2.5
//! items, evening peaks (7–10 pm), weekly and holiday seasonality (a Black
//! Friday spike), the status mix of the saga, and ~2% fraud in three
//! patterns whose ground truth goes to `fraud_labels`.
//!
//! Each day is generated from its own RNG (seeded by `--seed` and the day),
//! so days are generated in parallel and still come out the same.
//!
//! Its own crate beside the streaming engine: it writes the lake the way
//! the engine would have (`analytics`' layouts, rows and pipelines) without
//! being part of it.

mod calendar;
mod catalog;
mod day;
mod people;
pub mod rollup;
mod tables;
pub mod verdict;
mod write;

pub use calendar::*;
pub use catalog::*;
pub use day::*;
pub use tables::*;
pub use verdict::{SeedScreen, settle};
pub use write::*;

#[cfg(test)]
mod tests;
