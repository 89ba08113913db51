//! End-to-end tests of local mode: the real API over HTTP, real deliveries to a real
//! receiver on loopback, signatures checked with an independent JOSE library.

mod analytics;
mod api;
mod clients;
mod crash;
mod disk;
mod hostile;
mod metrics;
mod operational;
mod pipeline;
mod policy;
mod readme;
mod recovery;
mod secrets;
mod standard;
mod support;
