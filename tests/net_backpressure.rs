//! TCP flow control: a bounded send window per stream end; writes wait
//! while it is full and go on as the peer reads.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use futures::{AsyncReadExt, AsyncWriteExt};
use lockstep::net::{self, Host, TcpConfig, TcpListener, TcpStream};
use lockstep::prelude::*;

/// A server on port 9 that accepts one connection, waits `delay`, then
/// reads everything and returns the count.
fn slow_sink(delay: Duration) -> Host {
    Host::new("server", move || async move {
        let listener = TcpListener::bind("0.0.0.0:9").await?;
        let (mut stream, _) = listener.accept().await?;
        sleep(delay).await;
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await?;
        lockstep::trace!("server read {} bytes", all.len());
        Ok(())
    })
}

#[test]
fn a_write_waits_while_the_send_window_is_full_and_resumes_as_the_peer_reads() {
    let outcome = Sim::new(1).run(async {
        net::set_tcp_config(TcpConfig::default().send_window(1000));
        slow_sink(Duration::from_secs(10));
        let client = Host::client("client");
        let written_at = Rc::new(Cell::new(None));
        let first = Rc::new(Cell::new(0));
        let (w, f) = (written_at.clone(), first.clone());
        client
            .spawn(async move {
                let mut stream = TcpStream::connect("server:9").await?;
                // One write takes what fits in the window.
                f.set(stream.write(&[7; 1500]).await?);
                stream.write_all(&[7; 3000]).await?;
                w.set(Some(Instant::now()));
                stream.close().await
            })
            .await
            .unwrap()
            .unwrap();
        (first.get(), written_at.get().unwrap())
    });
    let (first, written_at) = outcome.into_result().unwrap();
    assert_eq!(first, 1000, "a write takes only what fits in the window");
    assert!(
        written_at >= Instant::START + Duration::from_secs(10),
        "the writer went on before the reader read: {written_at}"
    );
}

#[test]
fn small_writes_under_the_window_never_wait() {
    let outcome = Sim::new(2).run(async {
        slow_sink(Duration::from_secs(10));
        Host::client("client")
            .spawn(async {
                let mut stream = TcpStream::connect("server:9").await?;
                let start = Instant::now();
                for _ in 0..60 {
                    stream.write_all(&[1; 1000]).await?;
                }
                Ok::<_, io::Error>(Instant::now() - start)
            })
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(outcome.into_result().unwrap(), Duration::ZERO);
}

#[test]
fn a_writer_blocked_on_a_full_window_is_named_in_a_deadlock_report() {
    // The server never reads and waits for the client forever: the client
    // fills the window and waits for room; nothing else can happen.
    let outcome = Sim::new(3).run(async {
        Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:9").await?;
            let (_stream, _) = listener.accept().await?;
            std::future::pending::<()>().await;
            Ok(())
        });
        Host::client("client")
            .spawn(async {
                let mut stream = TcpStream::connect("server:9").await?;
                stream.set_send_window(100);
                stream.write_all(&[0; 1000]).await
            })
            .await
            .unwrap()
    });
    let failure = outcome.into_result().unwrap_err();
    let text = failure.to_string();
    assert!(text.contains("the send window is full"), "{text}");
}

#[test]
fn a_peer_that_drops_its_stream_unblocks_the_writer() {
    let outcome = Sim::new(4).run(async {
        Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:9").await?;
            let (stream, _) = listener.accept().await?;
            sleep(Duration::from_secs(1)).await;
            drop(stream);
            std::future::pending::<()>().await;
            Ok(())
        });
        Host::client("client")
            .spawn(async {
                let mut stream = TcpStream::connect("server:9").await?;
                stream.set_send_window(10);
                stream.write_all(&[0; 100]).await?;
                Ok::<_, io::Error>(Instant::now())
            })
            .await
            .unwrap()
            .unwrap()
    });
    let at = outcome.into_result().unwrap();
    assert!(at >= Instant::START + Duration::from_secs(1), "{at}");
}

#[test]
#[should_panic(expected = "the window must be at least 1 byte")]
fn a_zero_window_is_rejected() {
    let _ = TcpConfig::default().send_window(0);
}

/// A producer streaming 200 KiB through a 4 KiB window to a reader that
/// reads 1 KiB every millisecond, under jitter.
async fn slow_pipe() -> (usize, Instant) {
    net::set_default_link(lockstep::net::LinkConfig::default().jitter(Duration::from_micros(500)));
    Host::new("server", || async {
        let listener = TcpListener::bind("0.0.0.0:9").await?;
        let (mut stream, _) = listener.accept().await?;
        let mut buf = [0; 1024];
        let mut total = 0;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n;
            sleep(Duration::from_millis(1)).await;
        }
        lockstep::trace!("server read {total} bytes");
        Ok(())
    });
    Host::client("client")
        .spawn(async {
            let mut stream = TcpStream::connect("server:9").await?;
            stream.set_send_window(4096);
            let data = vec![5u8; 200 * 1024];
            stream.write_all(&data).await?;
            stream.close().await?;
            Ok::<_, io::Error>((data.len(), Instant::now()))
        })
        .await
        .unwrap()
        .unwrap()
}

#[test]
fn a_slow_reader_paces_the_writer_and_replays_identically() {
    for seed in 0..5u64 {
        let outcome = Sim::builder()
            .seed(seed)
            .build()
            .run_checking_determinism(slow_pipe);
        let (n, done) = outcome.into_result().unwrap();
        assert_eq!(n, 200 * 1024);
        // 200 reads of 1 KiB, 1 ms apart, less the window still unread.
        assert!(
            done >= Instant::START + Duration::from_millis(190),
            "seed {seed}: the writer finished at {done}"
        );
    }
}

#[test]
fn a_link_can_set_the_window_of_streams_over_it() {
    let outcome = Sim::new(5).run(async {
        slow_sink(Duration::from_secs(10));
        let client = Host::client("client");
        net::set_link_oneway(
            "client",
            "server",
            lockstep::net::LinkConfig::default().send_window(300),
        );
        client
            .spawn(async {
                let mut stream = TcpStream::connect("server:9").await?;
                stream.write(&[1; 1000]).await
            })
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(outcome.into_result().unwrap(), 300);
}
