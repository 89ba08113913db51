//! Hookline's domain: what a webhook, an event and a delivery are, which webhooks an
//! event goes to, when a failed delivery is tried again, what a delivery request looks
//! like and how its signature is assembled.
//!
//! This crate does no I/O of its own and knows nothing of AWS or SQLite. It owns the
//! ports (small traits in [`ports`]) that adapters implement, and the two steps that
//! every runtime shares: [`fanout::fan_out`] (one event → one delivery per matching
//! webhook) and [`send::send`] (one due delivery → one attempt → its next state).

pub mod analytics;
pub mod auth;
pub mod catalog;
pub mod delivery;
pub mod duration;
pub mod event;
#[cfg(test)]
pub(crate) mod fakes;
pub mod fanout;
pub mod ids;
pub mod jwt;
pub mod metrics;
pub mod operational;
pub mod page;
pub mod payload;
pub mod policy;
pub mod ports;
pub mod recovery;
pub mod retry;
pub mod send;
pub mod throttle;
pub mod time;
pub mod usecases;
pub mod webhook;

pub use policy::Policy;
pub use ports::Hookline;
