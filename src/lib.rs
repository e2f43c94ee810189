//! leadguard: real-time collision (撞单) detection and customer ownership for sales activity
//! streams.
//!
//! The crate is a pure core with thin edges:
//! - [`ingest`] turns bytes into canonical [`event`]s (or a [`ingest::Rejection`] with a reason);
//! - [`engine`] is the deterministic core: events and time in, [`output`]s out, no IO, no clock;
//! - [`identity`] normalizes phones, emails and company names and resolves them to customers;
//! - [`config`] reads the rules, source mappings and roster, reporting every error at once;
//! - [`pipeline`] drives the core over files and stdin (`run`, `replay`), and [`telemetry`]
//!   exports the core's counters as Prometheus metrics;
//! - [`gen`] writes realistic streams for tests, demos and benchmarks.

pub mod config;
pub mod engine;
pub mod event;
pub mod gen;
pub mod identity;
pub mod ingest;
pub mod output;
pub mod pipeline;
pub mod telemetry;
pub mod time;
