//! The order processor: the saga of every order, exactly once.

pub mod engine;
