//! Sockets still open when the main task returns: leaks, with the task
//! that opened them; sockets of running host tasks are not.

use std::io;

use futures::{AsyncReadExt, AsyncWriteExt};
use lockstep::check::FailureKind;
use lockstep::net::{Host, TcpListener, TcpStream, UdpSocket};
use lockstep::prelude::*;
use lockstep::{Failure, Severity};

/// An echo server that keeps every connection in a running handler.
fn server() -> Host {
    Host::new("server", || async {
        let listener = TcpListener::bind("0.0.0.0:80").await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            lockstep::spawn(async move {
                let mut buf = [0; 64];
                while stream.read(&mut buf).await? > 0 {}
                Ok::<_, io::Error>(())
            });
        }
    })
}

fn leak_report(failure: Failure) -> lockstep::check::LeakReport {
    match failure {
        Failure::Leak(r) => r,
        other => panic!("expected a leak, got: {other}"),
    }
}

#[test]
fn a_connection_forgotten_by_a_finished_client_task_is_a_leak_naming_that_task() {
    let outcome = Sim::new(1).run(async {
        server();
        let client = Host::client("client");
        client
            .spawn(async {
                lockstep::task::Builder::new()
                    .name("fetch")
                    .spawn(async {
                        let mut stream = TcpStream::connect("server:80").await.unwrap();
                        stream.write_all(b"GET /").await.unwrap();
                        std::mem::forget(stream);
                    })
                    .await
            })
            .await
            .unwrap()
            .unwrap();
        sleep(Duration::from_millis(10)).await;
    });
    let failure = outcome.into_result().unwrap_err();
    assert_eq!(failure.kind(), FailureKind::Leak);
    let text = failure.to_string();
    assert!(
        text.contains("leak: 1 socket was still open when the main task returned"),
        "{text}"
    );
    assert!(
        text.contains("tcp stream client:49152 -> server:80, opened by #"),
        "{text}"
    );
    assert!(text.contains("fetch"), "{text}");
    assert!(text.contains("which has finished"), "{text}");
    let r = leak_report(failure);
    assert!(r.tasks.is_empty());
    assert_eq!(
        r.sockets.len(),
        1,
        "the server's end is held by its handler"
    );
}

#[test]
fn a_listener_and_a_udp_socket_leaked_to_static_are_leaks() {
    let outcome = Sim::new(2).run(async {
        let host = Host::client("box");
        host.spawn(async {
            let listener = TcpListener::bind("0.0.0.0:8080").await.unwrap();
            Box::leak(Box::new(listener));
            let socket = UdpSocket::bind("0.0.0.0:53").await.unwrap();
            socket.send_to(b"x", "box:53").await.unwrap();
            Box::leak(Box::new(socket));
        })
        .await
        .unwrap();
    });
    let r = leak_report(outcome.into_result().unwrap_err());
    let names: Vec<&str> = r.sockets.iter().map(|s| s.socket.as_str()).collect();
    assert_eq!(names, ["tcp listener box:8080", "udp socket box:53"]);
    assert!(r.sockets.iter().all(|s| s.finished));
}

#[test]
fn sockets_of_running_host_tasks_and_closed_or_dropped_streams_are_not_leaks() {
    let outcome = Sim::new(3).run(async {
        server();
        let client = Host::client("client");
        // Dropped: closed.
        client
            .spawn(async {
                let mut s = TcpStream::connect("server:80").await?;
                s.write_all(b"a").await
            })
            .await
            .unwrap()
            .unwrap();
        // Closed, then kept: the user closed it.
        client
            .spawn(async {
                let mut s = TcpStream::connect("server:80").await?;
                s.close().await?;
                std::mem::forget(s);
                Ok::<_, io::Error>(())
            })
            .await
            .unwrap()
            .unwrap();
        // Held by a client task still waiting at the end: it ends with the
        // simulation.
        client.spawn(async {
            let mut s = TcpStream::connect("server:80").await?;
            let mut buf = [0; 1];
            s.read(&mut buf).await
        });
        sleep(Duration::from_millis(50)).await;
    });
    outcome.into_result().unwrap();
}

#[test]
fn a_stream_handed_on_is_judged_by_its_last_user() {
    // The accept loop (running) opens the server end; a handler that reads
    // it and then forgets it has finished: the leak names both.
    let outcome = Sim::new(4).run(async {
        Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:80").await?;
            loop {
                let (mut stream, _) = listener.accept().await?;
                lockstep::task::Builder::new()
                    .name("handler")
                    .spawn(async move {
                        let mut buf = [0; 1];
                        stream.read_exact(&mut buf).await.unwrap();
                        std::mem::forget(stream);
                    });
            }
        });
        let client = Host::client("client");
        client
            .spawn(async {
                let mut s = TcpStream::connect("server:80").await.unwrap();
                s.write_all(b"x").await.unwrap();
                sleep(Duration::from_millis(20)).await;
            })
            .await
            .unwrap();
    });
    let r = leak_report(outcome.into_result().unwrap_err());
    assert_eq!(r.sockets.len(), 1, "{:?}", r.sockets);
    let leak = &r.sockets[0];
    assert_eq!(leak.socket, "tcp stream server:80 -> client:49152");
    assert_eq!(leak.opened_by.name.as_deref(), Some("server"));
    assert_eq!(
        leak.last_used_by.as_ref().and_then(|t| t.name.as_deref()),
        Some("handler")
    );
    assert!(leak.to_string().contains("last used by #"), "{leak}");
}

#[test]
fn socket_leaks_follow_the_leaks_severity() {
    let outcome = Sim::builder()
        .seed(5)
        .leaks(Severity::Warn)
        .build()
        .run(async {
            let host = Host::client("box");
            host.spawn(async {
                Box::leak(Box::new(TcpListener::bind("0.0.0.0:1").await.unwrap()));
            })
            .await
            .unwrap();
        });
    assert_eq!(outcome.warnings().len(), 1);
    outcome.into_result().unwrap();
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<TcpStream>> = const { std::cell::RefCell::new(None) };
}

/// A run with an echo-until-EOF server and one client connection; the
/// client side is returned to the caller through `keep`.
fn connect_and(seed: u64, keep: bool) -> Outcome<usize> {
    Sim::builder()
        .seed(seed)
        .leaks(Severity::Ignore)
        .build()
        .run(async move {
            server();
            let client = Host::client("client");
            client
                .spawn(async move {
                    let mut s = TcpStream::connect("server:80").await.unwrap();
                    s.write_all(b"hi").await.unwrap();
                    if keep {
                        KEPT.with(|k| *k.borrow_mut() = Some(s));
                        return 0;
                    }
                    // A stream from an earlier run, dropped and used here,
                    // must not touch this run's connection.
                    let mut old = KEPT.with(|k| k.borrow_mut().take()).unwrap();
                    let err = old.write_all(b"x").await.unwrap_err();
                    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
                    drop(old);
                    s.write_all(b" there").await.unwrap();
                    8
                })
                .await
                .unwrap()
        })
}

#[test]
fn a_stream_kept_from_an_earlier_run_touches_nothing_in_a_later_one() {
    assert_eq!(connect_and(9, true).into_result().unwrap(), 0);
    assert_eq!(connect_and(9, false).into_result().unwrap(), 8);
}

#[test]
fn a_stream_given_to_a_running_worker_that_never_used_it_is_not_a_leak() {
    // A pool: a setup task opens connections and spawns a worker per
    // connection, then finishes; the workers wait for jobs that never
    // come, so they never touch their streams. Their streams end with them.
    let outcome = Sim::new(6).run(async {
        server();
        let client = Host::client("client");
        client
            .spawn(async {
                for _ in 0..3 {
                    let mut stream = TcpStream::connect("server:80").await.unwrap();
                    let (_jobs_tx, mut jobs) = lockstep::sync::mpsc::channel::<u8>(1);
                    std::mem::forget(_jobs_tx);
                    lockstep::spawn(async move {
                        while let Some(b) = jobs.recv().await {
                            stream.write_all(&[b]).await.unwrap();
                        }
                    });
                }
            })
            .await
            .unwrap();
        sleep(Duration::from_millis(20)).await;
    });
    outcome.into_result().unwrap();
}
