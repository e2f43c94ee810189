//! Collision alerts delivered to the people involved, through the chat platforms' group-robot
//! webhooks: 企业微信 WeCom, 钉钉 DingTalk, 飞书 Feishu and Slack.
//!
//! - [`config`]: the notifications file (channels, delivery policy), read with positions.
//! - [`message`]: pure — an alert and the roster → recipients → the platform's JSON body,
//!   signatures, and how to read the platform's answer.
//! - [`deliver`]: the edge — [`Notifier::start`] spawns the delivery task;
//!   [`NotifierHandle::submit`] queues without ever waiting.
//! - [`state`]: the per-recipient rate limit and the alerts sent recently (for retractions).
//! - [`stats`]: outcome counters per platform.

pub mod config;
pub mod deliver;
pub mod message;
pub mod state;
pub mod stats;

pub use config::{NotifyConfig, Platform};
pub use deliver::{Notifier, NotifierHandle, Submitted};
pub use stats::{NotifySnapshot, NotifyStats};
