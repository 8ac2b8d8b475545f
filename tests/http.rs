//! hyper 1.x over simulated TCP (feature `hyper`): requests and responses
//! cross the simulated network, keep-alive reuses one stream, a crashed
//! server is an error the client sees, and a seed replays byte for byte.
#![cfg(feature = "hyper")]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use lockstep::http::{HyperIo, server_builder};
use lockstep::net::{self, Host, LinkConfig, TcpListener, TcpStream};
use lockstep::prelude::*;

/// Answers `/sleep/N` after N seconds with the path; everything else at once.
fn server() -> Host {
    Host::new("api", || async {
        let listener = TcpListener::bind("0.0.0.0:80").await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let path = req.uri().path().to_string();
                if let Some(n) = path.strip_prefix("/sleep/") {
                    sleep(Duration::from_secs(n.parse().unwrap())).await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(path))))
            });
            let conn = server_builder().serve_connection(HyperIo::new(stream), service);
            lockstep::spawn(async move {
                if let Err(e) = conn.await {
                    lockstep::trace!("connection error: {e}");
                }
            });
        }
    })
}

async fn connect() -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect("api:80").await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(HyperIo::new(stream))
        .await
        .unwrap();
    lockstep::spawn(async move {
        let _ = conn.await;
    });
    send
}

async fn get(send: &mut SendRequest<Full<Bytes>>, path: &str) -> hyper::Result<String> {
    send.ready().await?;
    let req = Request::get(path)
        .header("host", "api")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

fn run(seed: u64) -> Outcome<(Vec<String>, Duration)> {
    Sim::new(seed).run(async {
        server();
        net::set_default_link(LinkConfig::constant(Duration::from_millis(10)));
        let client = Host::new("client", || async { Ok(()) });
        client
            .spawn(async {
                let mut send = connect().await;
                let a = get(&mut send, "/first").await.unwrap();
                let b = get(&mut send, "/sleep/2").await.unwrap();
                (vec![a, b], Instant::now().since_start())
            })
            .await
            .unwrap()
    })
}

#[test]
fn requests_cross_the_simulated_network_on_one_kept_alive_stream() {
    let outcome = run(3);
    let trace = outcome.trace().render();
    let (bodies, took) = outcome.into_result().unwrap();
    assert_eq!(bodies, ["/first", "/sleep/2"]);
    // Handshake (2 × 10 ms), two round trips (4 × 10 ms), the 2 s sleep.
    assert_eq!(took, Duration::from_millis(2060));
    assert_eq!(
        trace.lines().filter(|l| l.contains("accept")).count(),
        1,
        "both requests used one connection:\n{trace}"
    );
}

#[test]
fn a_seed_replays_the_same_http_exchange() {
    assert_eq!(run(9).trace().render(), run(9).trace().render());
}

#[test]
fn a_server_crash_mid_request_is_an_error_for_the_client() {
    let outcome = Sim::new(4).run(async {
        let api = server();
        let client = Host::new("client", || async { Ok(()) });
        let req = client.spawn(async {
            let mut send = connect().await;
            get(&mut send, "/sleep/5").await
        });
        sleep(Duration::from_secs(1)).await;
        api.crash();
        req.await.unwrap()
    });
    let err = outcome.into_result().unwrap().unwrap_err();
    let io = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("not an I/O error: {err:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset, "{err:?}");
}

#[test]
fn the_executor_spawns_on_the_running_simulation() {
    use hyper::rt::Executor as _;
    let outcome = Sim::new(1).run(async {
        let (tx, rx) = lockstep::sync::oneshot::channel();
        lockstep::http::Executor.execute(async move {
            sleep(Duration::from_secs(1)).await;
            let _ = tx.send(7);
        });
        (rx.await.unwrap(), Instant::now().since_start())
    });
    assert_eq!(outcome.into_result().unwrap(), (7, Duration::from_secs(1)));
}
