//! Test support shared by Hookline's integration suites: a recording HTTP receiver,
//! an API client, an independent JOSE verifier, and the port contract suites that
//! every adapter must pass.

pub mod client;
pub mod contract;
pub mod emf;
pub mod hostile;
pub mod jose;
pub mod lambda;
pub mod moto;
pub mod prometheus;
pub mod readme;
pub mod receiver;
pub mod runtime_api;
pub mod standard;
