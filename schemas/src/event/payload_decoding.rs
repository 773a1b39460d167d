//! Decoding of [`EventPayload`] without serde's buffering.
//!
//! serde decodes an internally tagged enum by first copying the whole
//! object into a generic tree (it cannot know the variant before it has
//! seen `type`), then decoding the variant from that tree: a third of all
//! the time a replay spent decoding events. Every payload this system
//! writes starts with `type`, so here the variant is known after the first
//! key and its fields decode straight from the input. An object with
//! `type` elsewhere is gathered first, as serde does. Either way the fields
//! decode as serde's derive decodes the enum's: unknown fields are ignored,
//! a missing `Option` is `None`, a repeated field is an error.

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqAccessDeserializer};
use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::EventPayload;
use crate::{CancelReason, MinorUnits, OrderStatus};

impl<'de> Deserialize<'de> for EventPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PayloadVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum PayloadType {
    StatusChanged,
    RefundIssued,
    CommandRejected,
}

// The variants' fields, as `EventPayload` declares them. `type` is a
// field too: after the first key, a second `type` is an error, as in serde.

#[derive(Deserialize)]
struct StatusChangedFields {
    from: Option<OrderStatus>,
    to: OrderStatus,
    #[serde(default)]
    reason: Option<CancelReason>,
    #[serde(default)]
    risk_score: Option<u8>,
    #[serde(default)]
    risk_reasons: Vec<String>,
    #[serde(default)]
    risk_model: Option<String>,
    #[serde(default)]
    reviewer: Option<String>,
    #[serde(default)]
    review_note: Option<String>,
    #[serde(default)]
    prices: Vec<crate::LinePrice>,
    #[serde(default, rename = "type")]
    repeated_type: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RefundIssuedFields {
    amount: MinorUnits,
    #[serde(default, rename = "type")]
    repeated_type: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CommandRejectedFields {
    command: String,
    status: OrderStatus,
    message: String,
    #[serde(default, rename = "type")]
    repeated_type: Option<IgnoredAny>,
}

impl StatusChangedFields {
    fn into_payload(self) -> (EventPayload, Option<IgnoredAny>) {
        let StatusChangedFields {
            from,
            to,
            reason,
            risk_score,
            risk_reasons,
            risk_model,
            reviewer,
            review_note,
            prices,
            repeated_type,
        } = self;
        let payload = EventPayload::StatusChanged {
            from,
            to,
            reason,
            risk_score,
            risk_reasons,
            risk_model,
            reviewer,
            review_note,
            prices,
        };
        (payload, repeated_type)
    }
}

impl RefundIssuedFields {
    fn into_payload(self) -> (EventPayload, Option<IgnoredAny>) {
        (EventPayload::RefundIssued { amount: self.amount }, self.repeated_type)
    }
}

impl CommandRejectedFields {
    fn into_payload(self) -> (EventPayload, Option<IgnoredAny>) {
        let CommandRejectedFields { command, status, message, repeated_type } = self;
        (EventPayload::CommandRejected { command, status, message }, repeated_type)
    }
}

impl PayloadType {
    /// The variant's fields, from a deserializer over the rest of the object.
    fn fields<'de, D: Deserializer<'de>>(self, rest: D) -> Result<EventPayload, D::Error> {
        let (payload, repeated_type) = match self {
            PayloadType::StatusChanged => StatusChangedFields::deserialize(rest)?.into_payload(),
            PayloadType::RefundIssued => RefundIssuedFields::deserialize(rest)?.into_payload(),
            PayloadType::CommandRejected => CommandRejectedFields::deserialize(rest)?.into_payload(),
        };
        match repeated_type {
            Some(_) => Err(D::Error::duplicate_field("type")),
            None => Ok(payload),
        }
    }
}

/// An object key: `type`, or any other (kept, for the gathered path).
enum Key {
    Type,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: Error>(self, key: &str) -> Result<Key, E> {
                Ok(if key == "type" { Key::Type } else { Key::Other(key.to_string()) })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = EventPayload;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event payload object with a \"type\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventPayload, A::Error> {
        // In order, repeats kept: the fields then see what serde's would.
        let mut gathered: Vec<(String, serde_json::Value)> = Vec::new();
        let mut payload_type = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Type if gathered.is_empty() => {
                    let found: PayloadType = map.next_value()?;
                    return found.fields(MapAccessDeserializer::new(map));
                }
                Key::Type if payload_type.is_some() => return Err(A::Error::duplicate_field("type")),
                Key::Type => payload_type = Some(map.next_value::<PayloadType>()?),
                Key::Other(name) => gathered.push((name, map.next_value()?)),
            }
        }
        let found = payload_type.ok_or_else(|| A::Error::missing_field("type"))?;
        let rest = MapDeserializer::<_, serde_json::Error>::new(gathered.into_iter());
        found.fields(rest).map_err(A::Error::custom)
    }

    /// serde's other form of a tagged enum: `[type, fields in order...]`.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventPayload, A::Error> {
        let found: PayloadType = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
        found.fields(SeqAccessDeserializer::new(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// serde's own decoding of an internally tagged enum of the same
    /// fields (the buffering path), to compare against.
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Reference {
        StatusChanged(StatusChangedFields),
        RefundIssued(RefundIssuedFields),
        CommandRejected(CommandRejectedFields),
    }

    impl Reference {
        fn payload(self) -> EventPayload {
            match self {
                Reference::StatusChanged(f) => f.into_payload().0,
                Reference::RefundIssued(f) => f.into_payload().0,
                Reference::CommandRejected(f) => f.into_payload().0,
            }
        }
    }

    #[test]
    fn decodes_as_serde_does_with_type_first_elsewhere_or_wrong() {
        let cases = [
            r#"{"type":"status_changed","from":"pending","to":"reserved"}"#,
            r#"{"type":"status_changed","to":"cancelled","reason":"payment_declined","from":null}"#,
            r#"{"type":"status_changed","to":"flagged","risk_score":80,"risk_reasons":["ip_burst"],"extra":[1,{"a":2}]}"#,
            r#"{"from":"pending","to":"reserved","type":"status_changed"}"#,
            r#"{"to":"flagged","type":"status_changed","risk_reasons":["a","b"]}"#,
            r#"{"type":"refund_issued","amount":1999}"#,
            r#"{"amount":1999,"type":"refund_issued"}"#,
            r#"{"type":"command_rejected","command":"cancel","status":"shipped","message":"too late"}"#,
            r#"{"message":"m","status":"shipped","command":"cancel","type":"command_rejected"}"#,
            r#"{"type":"status_changed","from":"pending"}"#,
            r#"{"from":"pending"}"#,
            r#"{"type":"teleported"}"#,
            r#"{"type":"refund_issued","amount":"lots"}"#,
            r#"{"type":"refund_issued","amount":1,"amount":2}"#,
            r#"{"amount":1,"type":"refund_issued","type":"refund_issued"}"#,
            r#"{"type":"refund_issued","type":"refund_issued","amount":1}"#,
            r#"{"extra":1,"extra":2,"type":"refund_issued","amount":1}"#,
            r#"{"to":"pending","to":"reserved","type":"status_changed"}"#,
            r#"["refund_issued",5]"#,
            r#"["status_changed"]"#,
            r#"["status_changed",null,"reserved"]"#,
            r#"{}"#,
            r#"[]"#,
            r#""status_changed""#,
        ];
        for text in cases {
            let ours = decode::<EventPayload>(text);
            let serde = decode::<Reference>(text).map(Reference::payload);
            assert_eq!(ours.is_ok(), serde.is_ok(), "{text}: {ours:?} against {serde:?}");
            if let (Ok(ours), Ok(serde)) = (ours, serde) {
                assert_eq!(ours, serde, "{text}");
            }
        }
    }

    #[test]
    fn round_trips_every_variant() {
        let payloads = [
            EventPayload::StatusChanged {
                from: Some(OrderStatus::Pending),
                to: OrderStatus::Flagged,
                reason: None,
                risk_score: Some(91),
                risk_reasons: vec!["new_account_high_value".into()],
                risk_model: Some("lr-1".into()),
                reviewer: None,
                review_note: None,
                prices: vec![crate::LinePrice {
                    product_id: "tv".into(),
                    unit_price: MinorUnits(60_000),
                    submitted: Some(MinorUnits(1)),
                }],
            },
            EventPayload::StatusChanged {
                from: Some(OrderStatus::Flagged),
                to: OrderStatus::Reserved,
                reason: None,
                risk_score: None,
                risk_reasons: vec![],
                risk_model: None,
                reviewer: Some("ana".into()),
                review_note: Some("called the customer".into()),
                prices: vec![],
            },
            EventPayload::RefundIssued { amount: MinorUnits(4200) },
            EventPayload::CommandRejected {
                command: "cancel".into(),
                status: OrderStatus::Shipped,
                message: "shipped orders cannot be cancelled".into(),
            },
        ];
        for payload in payloads {
            let text = serde_json::to_string(&payload).unwrap();
            assert!(text.starts_with(r#"{"type":"#), "{text}");
            assert_eq!(decode::<EventPayload>(&text), Ok(payload));
        }
    }
}
