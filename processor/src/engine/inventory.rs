//! Stock per product, changed only by the engine, in log order. Every
//! operation checks all of its items before it changes any, so a failed
//! operation changes nothing and `received = available + reserved + sold`
//! holds after every step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use schemas::{MAX_STOCK_UNITS, OrderItem, StockChange, StockLevel};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StockError {
    #[error("{product_id}: {wanted} wanted, {available} available")]
    Shortage { product_id: String, wanted: u64, available: u64 },
    #[error("{product_id}: invariant broken: {what}")]
    Invariant { product_id: String, what: &'static str },
    #[error("{product_id}: {message}")]
    Refused { product_id: String, message: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    levels: BTreeMap<String, StockLevel>,
}

/// Which bucket units move from and to.
#[derive(Clone, Copy)]
enum Move {
    Reserve,
    Release,
    Sell,
    Restock,
}

impl Inventory {
    pub fn level(&self, product_id: &str) -> StockLevel {
        self.levels.get(product_id).copied().unwrap_or_default()
    }

    pub fn products(&self) -> impl Iterator<Item = (&String, &StockLevel)> {
        self.levels.iter()
    }

    fn check(&self, items: &[OrderItem], how: Move) -> Result<(), StockError> {
        // Per product, all of its lines together (ingest refuses an order
        // naming a product twice; the engine does not rely on it).
        let mut wanted: BTreeMap<&str, u64> = BTreeMap::new();
        for item in items {
            let n = wanted.entry(item.product_id.as_str()).or_default();
            *n = n.saturating_add(u64::from(item.quantity));
        }
        for (product_id, wanted) in wanted {
            let level = self.level(product_id);
            let (have, what) = match how {
                Move::Reserve => (level.available, ""),
                Move::Release | Move::Sell => (level.reserved, "fewer units reserved than the order holds"),
                Move::Restock => (level.sold, "fewer units sold than the order bought"),
            };
            if have < wanted {
                let product_id = product_id.to_string();
                return Err(match how {
                    Move::Reserve => StockError::Shortage { product_id, wanted, available: have },
                    _ => StockError::Invariant { product_id, what },
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, items: &[OrderItem], how: Move) -> Result<(), StockError> {
        self.check(items, how)?;
        // Checked as a whole first, so a failure changes nothing. Units only
        // move between buckets, so no sum outgrows the product's on-hand
        // total (at most MAX_STOCK_UNITS); checked all the same.
        let mut next = Vec::with_capacity(items.len());
        for item in items {
            let level = next
                .iter()
                .rev()
                .find(|(id, _): &&(&String, StockLevel)| *id == &item.product_id)
                .map_or_else(|| self.level(&item.product_id), |(_, l)| *l);
            let n = u64::from(item.quantity);
            let (from, to) = match how {
                Move::Reserve => (level.available.checked_sub(n), level.reserved.checked_add(n)),
                Move::Release => (level.reserved.checked_sub(n), level.available.checked_add(n)),
                Move::Sell => (level.reserved.checked_sub(n), level.sold.checked_add(n)),
                Move::Restock => (level.sold.checked_sub(n), level.available.checked_add(n)),
            };
            let (Some(from), Some(to)) = (from, to) else {
                return Err(StockError::Invariant { product_id: item.product_id.clone(), what: "a count would wrap" });
            };
            let moved = match how {
                Move::Reserve => StockLevel { available: from, reserved: to, ..level },
                Move::Release => StockLevel { reserved: from, available: to, ..level },
                Move::Sell => StockLevel { reserved: from, sold: to, ..level },
                Move::Restock => StockLevel { sold: from, available: to, ..level },
            };
            next.push((&item.product_id, moved));
        }
        for (product_id, level) in next {
            self.levels.insert(product_id.clone(), level);
        }
        Ok(())
    }

    /// All items or none: available → reserved.
    pub fn reserve(&mut self, items: &[OrderItem]) -> Result<(), StockError> {
        self.apply(items, Move::Reserve)
    }

    /// A reservation given back (payment declined, cancelled): reserved → available.
    pub fn release(&mut self, items: &[OrderItem]) -> Result<(), StockError> {
        self.apply(items, Move::Release)
    }

    /// Paid: reserved → sold.
    pub fn sell(&mut self, items: &[OrderItem]) -> Result<(), StockError> {
        self.apply(items, Move::Sell)
    }

    /// A paid order cancelled before shipping: sold → available.
    pub fn restock(&mut self, items: &[OrderItem]) -> Result<(), StockError> {
        self.apply(items, Move::Restock)
    }

    /// An admin's change to available units; never below zero, never
    /// past [`MAX_STOCK_UNITS`] on hand.
    pub fn change(&mut self, product_id: &str, change: &StockChange) -> Result<(StockLevel, StockLevel), StockError> {
        let before = self.level(product_id);
        let refused = |message: String| StockError::Refused { product_id: product_id.to_string(), message };
        let available = match *change {
            StockChange::Set { quantity } => quantity,
            StockChange::Adjust { delta } => {
                let next = i128::from(before.available) + i128::from(delta);
                u64::try_from(next).map_err(|_| {
                    refused(format!("adjusting {} available by {delta} would go below zero", before.available))
                })?
            }
        };
        let after = StockLevel { available, ..before };
        if !after.in_bounds() {
            return Err(refused(format!(
                "{available} available with {} reserved and {} sold is more than the {MAX_STOCK_UNITS} units a product may hold",
                before.reserved, before.sold
            )));
        }
        self.levels.insert(product_id.to_string(), after);
        Ok((before, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use schemas::MinorUnits;

    fn item(product: &str, quantity: u32) -> OrderItem {
        OrderItem { product_id: product.into(), quantity, unit_price: MinorUnits(100) }
    }

    #[test]
    fn reservation_is_all_or_nothing() {
        let mut inv = Inventory::default();
        inv.change("a", &StockChange::Set { quantity: 5 }).unwrap();
        inv.change("b", &StockChange::Set { quantity: 1 }).unwrap();
        let err = inv.reserve(&[item("a", 2), item("b", 2)]).unwrap_err();
        assert!(matches!(err, StockError::Shortage { ref product_id, .. } if product_id == "b"));
        assert_eq!(inv.level("a").available, 5, "nothing reserved on failure");
        inv.reserve(&[item("a", 2), item("b", 1)]).unwrap();
        assert_eq!(inv.level("a"), StockLevel { available: 3, reserved: 2, sold: 0 });
        assert!(inv.reserve(&[item("unknown", 1)]).is_err());
    }

    #[test]
    fn moves_that_would_break_the_invariant_are_refused() {
        let mut inv = Inventory::default();
        inv.change("a", &StockChange::Set { quantity: 1 }).unwrap();
        assert!(matches!(inv.release(&[item("a", 1)]), Err(StockError::Invariant { .. })));
        assert!(matches!(inv.restock(&[item("a", 1)]), Err(StockError::Invariant { .. })));
        assert!(inv.change("a", &StockChange::Adjust { delta: -2 }).is_err());
        assert_eq!(inv.level("a").available, 1);
    }

    #[test]
    fn absurd_quantities_are_refused_and_nothing_wraps() {
        let mut inv = Inventory::default();
        assert!(inv.change("a", &StockChange::Set { quantity: u64::MAX }).is_err());
        assert!(inv.change("a", &StockChange::Set { quantity: MAX_STOCK_UNITS + 1 }).is_err());
        inv.change("a", &StockChange::Set { quantity: MAX_STOCK_UNITS }).unwrap();
        inv.reserve(&[item("a", 3)]).unwrap();
        inv.sell(&[item("a", 3)]).unwrap();
        assert!(inv.change("a", &StockChange::Adjust { delta: 1 }).is_err(), "3 sold + the maximum available");
        inv.restock(&[item("a", 3)]).unwrap();
        assert_eq!(inv.level("a"), StockLevel { available: MAX_STOCK_UNITS, reserved: 0, sold: 0 });
        assert!(inv.level("a").in_bounds());
        // The same product twice in one order moves its units twice, and
        // needs them all.
        inv.reserve(&[item("a", 1), item("a", 2)]).unwrap();
        assert_eq!(inv.level("a").reserved, 3);
        inv.change("b", &StockChange::Set { quantity: 2 }).unwrap();
        assert!(matches!(inv.reserve(&[item("b", 2), item("b", 1)]), Err(StockError::Shortage { wanted: 3, .. })));
        assert_eq!(inv.level("b").available, 2, "nothing reserved on failure");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(Vec<(u8, u32)>),
        Release(usize),
        Sell(usize),
        Restock(usize),
        Adjust(u8, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let items = prop::collection::vec((0_u8..4, 1_u32..5), 1..3);
        prop_oneof![
            items.prop_map(Op::Reserve),
            (0_usize..50).prop_map(Op::Release),
            (0_usize..50).prop_map(Op::Sell),
            (0_usize..50).prop_map(Op::Restock),
            (0_u8..4, -5_i64..10).prop_map(|(p, d)| Op::Adjust(p, d)),
        ]
    }

    proptest! {
        /// Whatever happens, units are conserved: what was received is exactly
        /// available + reserved + sold, per product.
        #[test]
        fn stock_is_conserved(ops in prop::collection::vec(op(), 1..80)) {
            let mut inv = Inventory::default();
            let mut received = [0_u64; 4];
            for (p, received) in received.iter_mut().enumerate() {
                inv.change(&format!("p{p}"), &StockChange::Set { quantity: 10 }).unwrap();
                *received = 10;
            }
            // Orders holding a reservation, and orders sold.
            let mut held: Vec<Vec<OrderItem>> = Vec::new();
            let mut sold: Vec<Vec<OrderItem>> = Vec::new();
            for op in ops {
                match op {
                    Op::Reserve(lines) => {
                        let mut items: Vec<OrderItem> = Vec::new();
                        for (p, q) in lines {
                            if !items.iter().any(|i| i.product_id == format!("p{p}")) {
                                items.push(item(&format!("p{p}"), q));
                            }
                        }
                        if inv.reserve(&items).is_ok() {
                            held.push(items);
                        }
                    }
                    Op::Release(i) if !held.is_empty() => {
                        let items = held.remove(i % held.len());
                        inv.release(&items).unwrap();
                    }
                    Op::Sell(i) if !held.is_empty() => {
                        let items = held.remove(i % held.len());
                        inv.sell(&items).unwrap();
                        sold.push(items);
                    }
                    Op::Restock(i) if !sold.is_empty() => {
                        let items = sold.remove(i % sold.len());
                        inv.restock(&items).unwrap();
                    }
                    Op::Adjust(p, delta) => {
                        let before = inv.level(&format!("p{p}")).on_hand();
                        if inv.change(&format!("p{p}"), &StockChange::Adjust { delta }).is_ok() {
                            received[p as usize] = (i128::from(received[p as usize]) + i128::from(delta)) as u64;
                            prop_assert_eq!(inv.level(&format!("p{p}")).on_hand() as i128, before as i128 + i128::from(delta));
                        }
                    }
                    _ => {}
                }
                for (p, received) in received.iter().enumerate() {
                    prop_assert_eq!(inv.level(&format!("p{p}")).on_hand(), *received);
                }
            }
        }
    }
}
