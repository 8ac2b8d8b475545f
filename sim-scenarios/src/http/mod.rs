//! HTTP for the scenarios: a simulated httpbin service and a pooled
//! client, both real HTTP/1 (hyper) over lockstep's simulated TCP.
//!
//! Reusable by any test that needs a web service to talk to:
//!
//! ```
//! use lockstep::net::Host;
//! use lockstep::prelude::*;
//! use sim_scenarios::http::{Client, Httpbin, BASE};
//!
//! let outcome = Sim::new(1).run(async {
//!     let _server = Httpbin::start();
//!     let machine = Host::new("client", || async { Ok(()) });
//!     let client = Client::new(&machine);
//!     let resp = client.get(&format!("{BASE}/delay/2")).await.unwrap();
//!     client.close().await; // or the run reports the open connection
//!     (resp.status, Instant::now().since_start() >= Duration::from_secs(2))
//! });
//! assert_eq!(outcome.into_result().unwrap(), (200, true));
//! ```

mod client;
mod httpbin;

pub use client::{Client, ClientConfig, ClientStats, Error, Response};
pub use httpbin::{BASE, HOST, Httpbin, Stats};

/// `BASE` + `path`: `url("/delay/2")` is `http://httpbin.org/delay/2`.
pub fn url(path: &str) -> String {
    format!("{BASE}{path}")
}
