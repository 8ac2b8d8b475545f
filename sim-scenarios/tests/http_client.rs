//! The simulated httpbin and the pooled client: endpoints, limits,
//! timeouts, failures.

use lockstep::net::{self, Host};
use lockstep::prelude::*;
use sim_scenarios::http::{Client, ClientConfig, Error, Httpbin, url};

fn run<T: 'static>(f: impl AsyncFnOnce(Client, Httpbin) -> T) -> T {
    Sim::new(7)
        .run(async move {
            let httpbin = Httpbin::start();
            let machine = Host::new("client", || async { Ok(()) });
            let client = Client::with_config(
                &machine,
                ClientConfig::default()
                    .limit_per_host(2)
                    .total_timeout(Duration::from_secs(3)),
            );
            let out = f(client.clone(), httpbin).await;
            client.close().await;
            out
        })
        .into_result()
        .unwrap()
}

#[test]
fn httpbin_answers_each_endpoint() {
    run(async |client, _| {
        let r = client.get(&url("/status/429")).await.unwrap();
        assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
        let r = client.get(&url("/bytes/1000")).await.unwrap();
        assert_eq!(r.body.len(), 1000);
        let r = client.get(&url("/json")).await.unwrap();
        assert_eq!(r.json().unwrap()["slideshow"]["title"], "Sample Slide Show");
        let r = client.get(&url("/headers")).await.unwrap();
        assert_eq!(
            r.json().unwrap()["headers"]["user-agent"],
            "lockstep-client/0.1"
        );
        let r = client.get(&url("/get?id=4&x=y")).await.unwrap();
        assert_eq!(r.json().unwrap()["args"]["x"], "y");
        let r = client.get(&url("/nope")).await.unwrap();
        assert!(matches!(r.error_for_status(), Err(Error::Status(404))));
        assert!(matches!(
            client.get("ftp://x/").await,
            Err(Error::InvalidUrl(_))
        ));
    });
}

#[test]
fn the_per_host_limit_queues_requests_and_reuses_connections() {
    let (took, stats, server) = run(async |client, httpbin| {
        let start = Instant::now();
        let all = gather((0..4).map(|_| {
            let c = client.clone();
            async move { c.get(&url("/delay/1")).await }
        }))
        .await
        .unwrap();
        assert!(all.iter().all(|r| r.status == 200));
        (Instant::now() - start, client.stats(), httpbin.stats())
    });
    // Two at a time: two rounds of one second.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2100),
        "{took:?}"
    );
    assert_eq!((stats.created, stats.reused, stats.peak_open), (2, 2, 2));
    assert_eq!(server.peak_in_flight, 2);
}

#[test]
fn a_slow_response_hits_the_total_timeout() {
    let (err, at) = run(async |client, _| {
        let err = client.get(&url("/delay/10")).await.unwrap_err();
        (err, Instant::now().since_start())
    });
    assert!(matches!(err, Error::Timeout("total")), "{err}");
    assert_eq!(at, Duration::from_secs(3));
}

#[test]
fn a_partitioned_server_hits_the_connect_timeout() {
    let (err, at) = run(async |_, _| {
        net::partition("client", "httpbin.org");
        // The default total timeout (30 s) leaves the connect timeout (5 s)
        // to fire.
        let machine = Host::lookup("client").unwrap();
        let client = Client::new(&machine);
        let err = client.get(&url("/get")).await.unwrap_err();
        (err, Instant::now().since_start())
    });
    assert!(matches!(err, Error::Timeout("connect")), "{err}");
    assert_eq!(at, Duration::from_secs(5));
}

#[test]
fn a_crashed_server_is_an_error_not_a_hang() {
    let err = run(async |client, httpbin| {
        let req = {
            let c = client.clone();
            spawn(async move { c.get(&url("/delay/2")).await })
        };
        sleep(Duration::from_secs(1)).await;
        httpbin.host().crash();
        req.await.unwrap().unwrap_err()
    });
    assert!(matches!(err, Error::Http(_)), "{err}");
}
