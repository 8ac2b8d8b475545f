//! Streams: echo, ordering, refusals, partitions, timeouts, closing.

use std::io;

use futures::{AsyncReadExt, AsyncWriteExt};
use lockstep::net::{self, Host, Latency, LinkConfig, TcpConfig, TcpListener, TcpStream};
use lockstep::prelude::*;

/// An echo server on port 7: every connection gets its bytes back.
fn echo_server(name: &str) -> Host {
    Host::new(name, || async {
        let listener = TcpListener::bind("0.0.0.0:7").await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            lockstep::spawn(async move {
                let mut buf = [0; 1024];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, io::Error>(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            });
        }
    })
}

fn idle(name: &str) -> Host {
    Host::new(name, || async { Ok(()) })
}

#[test]
fn echo_server_answers_several_clients() {
    let outcome = Sim::new(0xec0).run(async {
        echo_server("server");
        let mut handles = Vec::new();
        for i in 0..3 {
            let client = idle(&format!("client-{i}"));
            handles.push(client.spawn(async move {
                let mut stream = TcpStream::connect("server:7").await?;
                let mut replies = Vec::new();
                for j in 0..5 {
                    let msg = format!("c{i}-m{j}");
                    stream.write_all(msg.as_bytes()).await?;
                    let mut buf = vec![0; msg.len()];
                    stream.read_exact(&mut buf).await?;
                    replies.push(String::from_utf8(buf).unwrap());
                }
                Ok::<_, io::Error>(replies)
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.unwrap().unwrap());
        }
        all
    });
    let trace = outcome.trace().render();
    let all = outcome.into_result().unwrap();
    for (i, replies) in all.iter().enumerate() {
        let expected: Vec<String> = (0..5).map(|j| format!("c{i}-m{j}")).collect();
        assert_eq!(replies, &expected);
    }
    assert!(
        trace.contains("tcp connect client-0:49152 -> server:7"),
        "{trace}"
    );
    assert!(
        trace.contains("tcp accept server:7 -> client-0:49152"),
        "{trace}"
    );
    assert!(
        trace.contains("deliver tcp client-1:49152 -> server:7 (5 bytes)"),
        "{trace}"
    );
}

#[test]
fn a_stream_stays_ordered_under_jitter_and_loss() {
    for seed in 0..8u64 {
        let outcome = Sim::new(seed).run(async {
            net::set_default_link(
                LinkConfig::default()
                    .latency(Latency::Exponential {
                        mean: Duration::from_millis(20),
                    })
                    .jitter(Duration::from_millis(15))
                    .loss(0.3)
                    .duplicate(0.3)
                    .reorder(0.3),
            );
            echo_server("server");
            let client = idle("client");
            client
                .spawn(async {
                    let mut stream = TcpStream::connect("server:7").await?;
                    let sent: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
                    for chunk in sent.chunks(3) {
                        stream.write_all(chunk).await?;
                    }
                    let mut back = vec![0; sent.len()];
                    stream.read_exact(&mut back).await?;
                    Ok::<_, io::Error>(back == sent)
                })
                .await
                .unwrap()
                .unwrap()
        });
        assert!(
            outcome.into_result().unwrap(),
            "seed {seed}: bytes reordered"
        );
    }
}

#[test]
fn connecting_to_a_port_nobody_listens_on_is_refused_after_a_round_trip() {
    let outcome = Sim::new(1).run(async {
        net::set_default_link(LinkConfig::constant(Duration::from_millis(10)));
        idle("server");
        let client = idle("client");
        client
            .spawn(async { TcpStream::connect("server:81").await.map(|_| ()) })
            .await
            .unwrap()
            .map(|()| Instant::now())
            .map_err(|e| (e.kind(), e.to_string(), Instant::now()))
    });
    let (kind, msg, at) = outcome.into_result().unwrap().unwrap_err();
    assert_eq!(kind, io::ErrorKind::ConnectionRefused);
    assert!(msg.contains("server:81"), "{msg}");
    assert_eq!(at, Instant::START + Duration::from_millis(20));
}

#[test]
fn addresses_and_ports_give_real_error_kinds() {
    let outcome = Sim::new(1).run(async {
        idle("server");
        let client = idle("client");
        client
            .spawn(async {
                let kind = |r: io::Result<TcpStream>| r.unwrap_err().kind();
                let unknown = TcpStream::connect("nosuch:80").await.unwrap_err();
                let no_port = kind(TcpStream::connect("server").await);
                let bad_port = kind(TcpStream::connect("server:99999").await);
                let unknown_ip = kind(TcpStream::connect("10.9.9.9:80").await);
                let first = TcpListener::bind("0.0.0.0:80").await.unwrap();
                let taken = TcpListener::bind("client:80").await.unwrap_err().kind();
                let foreign = TcpListener::bind("server:80").await.unwrap_err().kind();
                let any = TcpListener::bind("0.0.0.0:0").await.unwrap();
                (
                    unknown.kind(),
                    unknown.to_string(),
                    no_port,
                    bad_port,
                    unknown_ip,
                    taken,
                    foreign,
                    first.local_addr().unwrap().to_string(),
                    any.local_addr().unwrap().port(),
                )
            })
            .await
            .unwrap()
    });
    let r = outcome.into_result().unwrap();
    assert_eq!(r.0, io::ErrorKind::NotFound);
    assert!(
        r.1.contains("no host named `nosuch` (hosts: server, client)"),
        "{}",
        r.1
    );
    assert_eq!(r.2, io::ErrorKind::InvalidInput);
    assert_eq!(r.3, io::ErrorKind::InvalidInput);
    assert_eq!(r.4, io::ErrorKind::HostUnreachable);
    assert_eq!(r.5, io::ErrorKind::AddrInUse);
    assert_eq!(r.6, io::ErrorKind::AddrNotAvailable);
    assert_eq!(r.7, "10.0.0.2:80");
    assert!(r.8 >= 49152);
    assert_eq!(
        Sim::new(1)
            .run(async {
                idle("a");
                net::lookup_host("a").unwrap().to_string()
            })
            .into_result()
            .unwrap(),
        "10.0.0.1"
    );
}

#[test]
fn a_partition_stalls_a_stream_until_it_heals() {
    let outcome = Sim::new(2).run(async {
        net::set_default_link(LinkConfig::constant(Duration::from_millis(5)));
        echo_server("server");
        let client = idle("client");
        let reply = client.spawn(async {
            let mut stream = TcpStream::connect("server:7").await?;
            net::partition("client", "server");
            stream.write_all(b"held").await?;
            let mut buf = [0; 4];
            stream.read_exact(&mut buf).await?;
            Ok::<_, io::Error>((buf, Instant::now()))
        });
        sleep(Duration::from_secs(3)).await;
        net::heal("client", "server");
        reply.await.unwrap()
    });
    let trace = outcome.trace().render();
    let (buf, at) = outcome.into_result().unwrap().unwrap();
    assert_eq!(&buf, b"held");
    // Connected at 10 ms; healed at 3 s; then 5 ms there and 5 ms back.
    assert_eq!(at, Instant::START + Duration::from_millis(3010));
    assert!(
        trace.contains("tcp stall client:49152 -> server:7: partition"),
        "{trace}"
    );
    assert!(
        trace.contains("tcp resume client:49152 -> server:7"),
        "{trace}"
    );
}

#[test]
fn a_partition_longer_than_the_user_timeout_fails_both_ends() {
    let outcome = Sim::new(3).run(async {
        net::set_tcp_config(TcpConfig::default().user_timeout(Duration::from_secs(10)));
        let server = Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:7").await?;
            let (mut stream, _) = listener.accept().await?;
            let mut buf = [0; 8];
            let err = stream.read(&mut buf).await.unwrap_err();
            lockstep::trace!("server read: {:?} at {}", err.kind(), Instant::now());
            Ok(())
        });
        let client = idle("client");
        let result = client.spawn(async {
            let mut stream = TcpStream::connect("server:7").await?;
            net::partition("client", "server");
            stream.write_all(b"lost").await?;
            let mut buf = [0; 4];
            let err = stream.read(&mut buf).await.unwrap_err();
            Ok::<_, io::Error>((err.kind(), Instant::now()))
        });
        let r = result.await.unwrap().unwrap();
        drop(server);
        r
    });
    let trace = outcome.trace().render();
    let (kind, at) = outcome.into_result().unwrap();
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(at > Instant::START + Duration::from_secs(10));
    assert!(at < Instant::START + Duration::from_millis(10_010));
    assert!(trace.contains("server read: ConnectionReset"), "{trace}");
    assert!(
        trace.contains("tcp timeout client:49152 -> server:7: no progress for 10.000s"),
        "{trace}"
    );
}

#[test]
fn connecting_across_a_partition_times_out_at_the_connect_timeout() {
    let outcome = Sim::new(4).run(async {
        net::set_tcp_config(TcpConfig::default().connect_timeout(Duration::from_secs(5)));
        echo_server("server");
        let client = idle("client");
        net::partition("client", "server");
        client
            .spawn(async {
                let err = TcpStream::connect("server:7").await.unwrap_err();
                (err.kind(), Instant::now())
            })
            .await
            .unwrap()
    });
    let (kind, at) = outcome.into_result().unwrap();
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert_eq!(at, Instant::START + Duration::from_secs(5));
}

#[test]
fn a_client_timeout_fires_at_the_right_time_under_a_permanent_partition() {
    let outcome = Sim::new(5).run(async {
        echo_server("server");
        let client = idle("client");
        client
            .spawn(async {
                let mut stream = TcpStream::connect("server:7").await.unwrap();
                net::partition("server", "client");
                let sent_at = Instant::now();
                stream.write_all(b"ping").await.unwrap();
                let mut buf = [0; 4];
                let r = timeout(Duration::from_millis(750), stream.read_exact(&mut buf)).await;
                (r.is_err(), Instant::now() - sent_at)
            })
            .await
            .unwrap()
    });
    let (timed_out, waited) = outcome.into_result().unwrap();
    assert!(timed_out);
    assert_eq!(waited, Duration::from_millis(750));
}

#[test]
fn closing_sends_eof_after_the_data_and_writes_after_close_fail() {
    let outcome = Sim::new(6).run(async {
        let server = Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:9").await?;
            let (mut stream, peer) = listener.accept().await?;
            let mut all = Vec::new();
            stream.read_to_end(&mut all).await?;
            lockstep::trace!("got {:?} from {peer}", String::from_utf8_lossy(&all));
            Ok(())
        });
        let client = idle("client");
        let r = client
            .spawn(async {
                let mut stream = TcpStream::connect("server:9").await?;
                stream.write_all(b"one ").await?;
                stream.write_all(b"two").await?;
                stream.close().await?;
                let after = stream.write_all(b"three").await.unwrap_err().kind();
                sleep(Duration::from_secs(1)).await;
                Ok::<_, io::Error>(after)
            })
            .await
            .unwrap();
        drop(server);
        r
    });
    let trace = outcome.trace().render();
    assert_eq!(
        outcome.into_result().unwrap().unwrap(),
        io::ErrorKind::BrokenPipe
    );
    assert!(
        trace.contains("got \"one two\" from 10.0.0.2:49152"),
        "{trace}"
    );
    assert!(
        trace.contains("tcp close client:49152 -> server:9"),
        "{trace}"
    );
}

#[test]
fn sockets_from_a_task_on_no_host_panic_with_a_clear_message() {
    let outcome = Sim::new(7).run(async {
        let _ = TcpListener::bind("0.0.0.0:80").await;
    });
    let text = outcome.failure().unwrap().to_string();
    assert!(
        text.contains(
            "`lockstep::net::TcpListener::bind` was called from a task that runs on no host"
        ),
        "{text}"
    );
}

#[test]
fn a_task_blocked_on_a_socket_is_named_in_a_deadlock_report() {
    let outcome = Sim::new(8).run(async {
        Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:7").await?;
            let (_stream, _) = listener.accept().await?;
            listener.accept().await?; // never answers the first one
            Ok(())
        });
        let client = idle("client");
        client
            .spawn(async {
                let mut stream = TcpStream::connect("server:7").await?;
                stream.write_all(b"?").await?;
                let mut buf = [0; 1];
                stream.read(&mut buf).await
            })
            .await
    });
    let text = outcome.failure().unwrap().to_string();
    assert!(text.starts_with("deadlock"), "{text}");
    assert!(
        text.contains("waits on read from server:7 on client:49152"),
        "{text}"
    );
    assert!(text.contains("waits on accept on server:7"), "{text}");
}

/// An httpbin-like service, one request per line: `/status/CODE`,
/// `/delay/SECS`, `/bytes/N`. Replies are `CODE LENGTH\n` then the body.
async fn httpbin(stream: TcpStream) -> io::Result<()> {
    use futures::{AsyncBufReadExt, StreamExt};
    let mut lines = futures::io::BufReader::new(&stream).lines();
    let mut out = &stream;
    while let Some(line) = lines.next().await {
        let line = line?;
        let mut parts = line.trim_start_matches('/').splitn(2, '/');
        let (route, arg) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let arg: u64 = arg.parse().unwrap_or(0);
        let (code, body) = match route {
            "status" => (arg, Vec::new()),
            "delay" => {
                sleep(Duration::from_secs(arg)).await;
                (200, Vec::new())
            }
            "bytes" => (200, (0..arg).map(|i| i as u8).collect()),
            _ => (404, Vec::new()),
        };
        out.write_all(format!("{code} {}\n", body.len()).as_bytes())
            .await?;
        out.write_all(&body).await?;
    }
    Ok(())
}

async fn get(
    reader: &mut futures::io::BufReader<&TcpStream>,
    path: &str,
) -> io::Result<(u16, Vec<u8>)> {
    use futures::AsyncBufReadExt;
    let mut out = *reader.get_ref();
    out.write_all(format!("{path}\n").as_bytes()).await?;
    let mut head = String::new();
    reader.read_line(&mut head).await?;
    let (code, len) = head.trim().split_once(' ').unwrap();
    let mut body = vec![0; len.parse().unwrap()];
    reader.read_exact(&mut body).await?;
    Ok((code.parse().unwrap(), body))
}

#[test]
fn a_line_protocol_request_response_service_is_easy_to_build() {
    let outcome = Sim::new(9).run(async {
        Host::new("httpbin", || async {
            let listener = TcpListener::bind("0.0.0.0:80").await?;
            loop {
                let (stream, _) = listener.accept().await?;
                lockstep::spawn(httpbin(stream));
            }
        });
        let client = idle("client");
        client
            .spawn(async {
                let stream = TcpStream::connect("httpbin:80").await?;
                let mut reader = futures::io::BufReader::new(&stream);
                let start = Instant::now();
                let status = get(&mut reader, "/status/503").await?;
                let delayed = get(&mut reader, "/delay/2").await?;
                let took = Instant::now() - start;
                let bytes = get(&mut reader, "/bytes/300").await?;
                let missing = get(&mut reader, "/nope").await?;
                Ok::<_, io::Error>((
                    status.0,
                    delayed.0,
                    took,
                    bytes.1.len(),
                    bytes.1[299],
                    missing.0,
                ))
            })
            .await
            .unwrap()
            .unwrap()
    });
    let (status, delayed, took, len, last, missing) = outcome.into_result().unwrap();
    assert_eq!(
        (status, delayed, len, last, missing),
        (503, 200, 300, 43, 404)
    );
    assert!(
        took > Duration::from_secs(2) && took < Duration::from_millis(2020),
        "{took:?}"
    );
}

#[test]
fn closing_a_listener_resets_connections_it_never_accepted() {
    let outcome = Sim::new(10).run(async {
        net::set_default_link(LinkConfig::constant(Duration::from_millis(5)));
        Host::new("server", || async {
            let listener = TcpListener::bind("0.0.0.0:7").await?;
            sleep(Duration::from_secs(1)).await; // never accepts
            drop(listener);
            Ok(())
        });
        let client = idle("client");
        client
            .spawn(async {
                let mut stream = TcpStream::connect("server:7").await?;
                let connected = Instant::now();
                let mut buf = [0; 1];
                let err = stream.read(&mut buf).await.unwrap_err();
                Ok::<_, io::Error>((connected, err.kind(), Instant::now()))
            })
            .await
            .unwrap()
            .unwrap()
    });
    let trace = outcome.trace().render();
    let (connected, kind, failed) = outcome.into_result().unwrap();
    assert_eq!(
        connected,
        Instant::START + Duration::from_millis(10),
        "the backlog completes the handshake"
    );
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
    assert_eq!(failed, Instant::START + Duration::from_millis(1005));
    assert!(
        trace.contains("tcp reset client:49152 -> server:7: listener closed"),
        "{trace}"
    );
}

#[test]
fn shutting_down_the_read_half_discards_what_arrives() {
    let outcome = Sim::new(11).run(async {
        echo_server("server");
        let client = idle("client");
        client
            .spawn(async {
                let mut stream = TcpStream::connect("server:7").await?;
                stream.write_all(b"echo me").await?;
                sleep(Duration::from_millis(100)).await; // the echo has arrived
                stream.shutdown(std::net::Shutdown::Read)?;
                let mut buf = [0; 16];
                let after_shutdown = stream.read(&mut buf).await?;
                stream.shutdown(std::net::Shutdown::Write)?;
                let write_after = stream.write_all(b"x").await.unwrap_err().kind();
                Ok::<_, io::Error>((after_shutdown, write_after, stream.peer_addr()?.to_string()))
            })
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (0, io::ErrorKind::BrokenPipe, "10.0.0.1:7".to_string())
    );
}

/// Under any fault plan, what a stream delivers is a prefix of what was
/// written, and a clean end of stream means all of it arrived: faults may
/// cut a stream short, never reorder, duplicate or invent bytes.
#[test]
fn under_random_faults_a_stream_delivers_a_prefix_and_eof_means_everything() {
    use lockstep::fault::FaultPlan;
    use std::cell::RefCell;
    use std::rc::Rc;

    const LEN: usize = 3000;
    let sent: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
    let (mut complete, mut cut) = (0, 0);
    for seed in 0..24u64 {
        // What each accepted stream received, and whether it ended cleanly.
        type Received = Rc<RefCell<Vec<(Vec<u8>, bool)>>>;
        let received: Received = Rc::default();
        let r = received.clone();
        let data = sent.clone();
        let outcome = Sim::builder()
            .seed(seed)
            .faults(FaultPlan::random_over(1.0, Duration::from_secs(10)))
            .build()
            .run(async move {
                net::set_default_link(LinkConfig::default().loss(0.2));
                net::set_tcp_config(TcpConfig::default().user_timeout(Duration::from_secs(3)));
                Host::new("server", move || {
                    let r = r.clone();
                    async move {
                        let listener = TcpListener::bind("0.0.0.0:7").await?;
                        loop {
                            let (mut s, _) = listener.accept().await?;
                            let r = r.clone();
                            lockstep::spawn(async move {
                                let mut got = Vec::new();
                                let mut buf = [0; 97];
                                let clean = loop {
                                    match s.read(&mut buf).await {
                                        Ok(0) => break true,
                                        Ok(n) => got.extend_from_slice(&buf[..n]),
                                        Err(_) => break false,
                                    }
                                };
                                r.borrow_mut().push((got, clean));
                            });
                        }
                    }
                });
                let client = Host::new("client", move || {
                    let data = data.clone();
                    async move {
                        for _ in 0..10 {
                            let Ok(Ok(mut s)) =
                                timeout(Duration::from_secs(2), TcpStream::connect("server:7"))
                                    .await
                            else {
                                continue;
                            };
                            for chunk in data.chunks(100) {
                                if s.write_all(chunk).await.is_err() {
                                    break;
                                }
                                sleep(Duration::from_millis(50)).await;
                            }
                            let _ = s.close().await;
                            sleep(Duration::from_secs(1)).await;
                        }
                        Ok(())
                    }
                });
                sleep(Duration::from_secs(40)).await;
                drop(client);
            });
        assert!(outcome.is_ok(), "seed {seed}: {:?}", outcome.failure());
        for (got, clean) in received.borrow().iter() {
            assert_eq!(got[..], sent[..got.len()], "seed {seed}: not a prefix");
            if *clean {
                assert_eq!(got.len(), LEN, "seed {seed}: a clean EOF before the end");
                complete += 1;
            } else {
                cut += 1;
            }
        }
    }
    assert!(
        complete > 0 && cut > 0,
        "both outcomes occur: {complete} complete, {cut} cut"
    );
}

#[test]
fn into_split_halves_read_and_write_from_two_tasks() {
    let outcome = Sim::new(0x5b1).run(async {
        echo_server("server");
        Host::client("client")
            .spawn(async {
                let stream = TcpStream::connect("server:7").await?;
                let (mut rd, mut wr) = stream.into_split();
                let writer = lockstep::spawn(async move {
                    for i in 0..3u8 {
                        wr.write_all(&[b'a' + i; 10]).await?;
                    }
                    // Dropping the owned write half closes the write side.
                    Ok::<_, io::Error>(())
                });
                let mut got = Vec::new();
                rd.read_to_end(&mut got).await?;
                writer.await.unwrap()?;
                Ok::<_, io::Error>(got)
            })
            .await
            .unwrap()
            .unwrap()
    });
    let got = outcome.into_result().unwrap();
    assert_eq!(got.len(), 30);
    assert_eq!(&got[..10], &[b'a'; 10]);
}

#[test]
fn the_prelude_brings_read_and_write_methods() {
    // No `use futures::…` here: the prelude has the extension traits.
    mod only_prelude {
        use lockstep::net::{Host, TcpStream};
        use lockstep::prelude::*;

        pub fn run() -> usize {
            Sim::new(1)
                .run(async {
                    super::echo_server("server");
                    Host::client("client")
                        .spawn(async {
                            let mut s = TcpStream::connect("server:7").await?;
                            s.write_all(b"hi").await?;
                            let mut buf = [0; 2];
                            s.read_exact(&mut buf).await?;
                            Ok::<_, std::io::Error>(buf.len())
                        })
                        .await
                        .unwrap()
                        .unwrap()
                })
                .into_result()
                .unwrap()
        }
    }
    assert_eq!(only_prelude::run(), 2);
}
