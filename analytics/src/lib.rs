//! Analytics: windowed aggregations over the order events. So far, the
//! event-time arithmetic every pipeline rests on (windows, sessions,
//! watermarks, lateness); the DataFusion jobs and Parquet output build on it.

pub mod window;
