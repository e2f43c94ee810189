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
//! - [`host`] lets other tasks ask an engine questions between events, and [`api`] serves
//!   those answers (and the metrics) over HTTP with role-based access;
//! - [`gen`] writes realistic streams for tests, demos and benchmarks;
//! - [`report`] counts an output stream (per team, rep pair, day, rule) as text or HTML;
//! - [`notify`] delivers collision alerts to WeCom, DingTalk, Feishu and Slack group chats.
//! - [`kafka`] drives the core from Kafka topics (consumer groups, transactions, changelog state).
//!
//! Driving the core directly:
//!
//! ```
//! use leadguard::config::{Roster, Rules};
//! use leadguard::engine::Engine;
//! use leadguard::ingest::Ingest;
//! use std::sync::Arc;
//!
//! let rules = Arc::new(Rules::embedded());
//! let mut ingest = Ingest::new(rules.clone());
//! let mut engine = Engine::new(rules, &Roster::default());
//! let lines = [
//!     r#"{"event_id":"1","kind":"call","occurred_at":"2026-11-02T09:00:00+08:00","rep":{"id":"r-li"},"customer":{"id":"C1","phone":"138 0013 8000"}}"#,
//!     r#"{"event_id":"2","kind":"call","occurred_at":"2026-11-02T10:00:00+08:00","rep":{"id":"r-wang"},"customer":{"phone":"+86-138-0013-8000"}}"#,
//! ];
//! let mut outputs = Vec::new();
//! for line in lines {
//!     let event = ingest.parse(line.as_bytes(), None, "doc").expect("valid event");
//!     // Replay: the event's own time is the driver's clock.
//!     engine.handle_event(&event, event.occurred_at()).expect("accepted");
//!     outputs.extend(engine.drain_outputs());
//! }
//! assert_eq!(outputs.len(), 1);
//! assert_eq!(outputs[0].ty().as_str(), "leadguard.collision.detected");
//! assert_eq!(&**outputs[0].subject(), "C1"); // the phone-only call found C1
//! ```

pub mod api;
pub mod calendar;
pub mod config;
pub mod digest;
pub mod digest_map;
pub mod engine;
pub mod event;
pub mod gen;
pub mod host;
pub mod identity;
pub mod ingest;
pub mod json;
pub mod kafka;
pub mod notify;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod rules_watch;
pub mod telemetry;
pub mod time;
