//! What several scenarios share: the simulated web they fetch from, and
//! assertions on virtual time.

use lockstep::net::Host;
use lockstep::prelude::*;

use crate::http::{Client, ClientConfig, Httpbin};

/// The simulated web of the HTTP scenarios: the httpbin host, and a
/// `client` host whose connections a [`Client`] opens.
pub struct Web {
    /// The service.
    pub httpbin: Httpbin,
    /// The machine the program runs on.
    pub machine: Host,
}

impl Web {
    /// Starts httpbin and an idle `client` host.
    pub fn start() -> Web {
        let httpbin = Httpbin::start();
        let machine = Host::new("client", || async { Ok(()) });
        Web { httpbin, machine }
    }

    /// A client with default settings (aiohttp's `ClientSession()`).
    pub fn client(&self) -> Client {
        Client::new(&self.machine)
    }

    /// A client with `config`.
    pub fn client_with(&self, config: ClientConfig) -> Client {
        Client::with_config(&self.machine, config)
    }
}

/// Asserts that `took` is `expected` plus at most `slack` (network
/// latency: a few milliseconds per round trip).
#[track_caller]
pub fn assert_took(what: &str, took: Duration, expected: Duration, slack: Duration) {
    assert!(
        took >= expected && took <= expected + slack,
        "{what} took {took:?} of virtual time, expected {expected:?} (+ up to {slack:?} of latency)"
    );
}

/// Seconds as a `Duration` (`secs(1.5)`).
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
