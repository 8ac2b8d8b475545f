//! Datagrams: echo, loss with retries, partitions, duplication, reordering.

use std::io;

use lockstep::net::{self, Host, Latency, LinkConfig, UdpSocket};
use lockstep::prelude::*;

fn echo_server() -> Host {
    Host::new("server", || async {
        let socket = UdpSocket::bind("0.0.0.0:7").await?;
        let mut buf = [0; 1500];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            socket.send_to(&buf[..n], from).await?;
        }
    })
}

fn idle(name: &str) -> Host {
    Host::new(name, || async { Ok(()) })
}

/// Sends `request` until an answer comes, waiting `patience` each time.
async fn ask(socket: &UdpSocket, request: &[u8], patience: Duration) -> io::Result<(Vec<u8>, u32)> {
    let mut buf = [0; 1500];
    for attempt in 1.. {
        socket.send_to(request, "server:7").await?;
        if let Ok(r) = timeout(patience, socket.recv_from(&mut buf)).await {
            let (n, _) = r?;
            if &buf[..n] == request {
                return Ok((buf[..n].to_vec(), attempt));
            }
        }
    }
    unreachable!()
}

#[test]
fn echo_over_datagrams_without_faults() {
    let outcome = Sim::new(0x0d9).run(async {
        echo_server();
        let client = idle("client");
        client
            .spawn(async {
                let socket = UdpSocket::bind("0.0.0.0:0").await?;
                let mut replies = Vec::new();
                for i in 0..10u8 {
                    let (reply, attempts) = ask(&socket, &[i], Duration::from_secs(1)).await?;
                    assert_eq!(attempts, 1, "nothing is lost without faults");
                    replies.push(reply[0]);
                }
                Ok::<_, io::Error>(replies)
            })
            .await
            .unwrap()
    });
    let trace = outcome.trace().render();
    assert_eq!(
        outcome.into_result().unwrap().unwrap(),
        (0..10).collect::<Vec<u8>>()
    );
    assert!(
        trace.contains("send udp client:49152 -> server:7 (1 bytes)"),
        "{trace}"
    );
    assert!(
        trace.contains("deliver udp server:7 -> client:49152 (1 bytes)"),
        "{trace}"
    );
}

#[test]
fn with_loss_and_a_retry_loop_every_request_is_answered() {
    let mut retried = 0;
    for seed in 0..20u64 {
        let outcome = Sim::new(seed).run(async {
            net::set_default_link(LinkConfig::default().loss(0.4).duplicate(0.1).reorder(0.1));
            echo_server();
            let client = idle("client");
            client
                .spawn(async {
                    let socket = UdpSocket::bind("0.0.0.0:0").await?;
                    let mut attempts = 0;
                    for i in 0..10u8 {
                        let (reply, n) = ask(&socket, &[i], Duration::from_millis(50)).await?;
                        assert_eq!(reply, [i]);
                        attempts += n;
                    }
                    Ok::<_, io::Error>(attempts)
                })
                .await
                .unwrap()
        });
        let trace = outcome.trace().render();
        let attempts = outcome.into_result().unwrap().unwrap();
        if attempts > 10 {
            retried += 1;
            assert!(trace.contains(": loss"), "seed {seed}: {trace}");
        }
    }
    assert!(
        retried > 10,
        "40% loss should force retries for most seeds ({retried}/20)"
    );
}

#[test]
fn under_a_permanent_partition_the_client_timeout_fires_at_the_right_time() {
    let outcome = Sim::new(1).run(async {
        echo_server();
        let client = idle("client");
        net::partition("client", "server");
        client
            .spawn(async {
                let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                let start = Instant::now();
                let r = timeout(
                    Duration::from_secs(2),
                    ask(&socket, b"?", Duration::from_millis(300)),
                )
                .await;
                (r.is_err(), Instant::now() - start)
            })
            .await
            .unwrap()
    });
    let trace = outcome.trace().render();
    let (timed_out, waited) = outcome.into_result().unwrap();
    assert!(timed_out);
    assert_eq!(waited, Duration::from_secs(2));
    // Sent at 0, 0.3, …, 1.8 s: seven attempts, all dropped.
    assert_eq!(
        trace
            .matches("drop udp client:49152 -> server:7 (1 bytes): partition")
            .count(),
        7,
        "{trace}"
    );
}

#[test]
fn a_one_way_partition_drops_only_one_direction() {
    let outcome = Sim::new(2).run(async {
        echo_server();
        let client = idle("client");
        net::partition_oneway("server", "client");
        client
            .spawn(async {
                let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                socket.send_to(b"x", "server:7").await.unwrap();
                let mut buf = [0; 4];
                timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
                    .await
                    .is_err()
            })
            .await
            .unwrap()
    });
    let trace = outcome.trace().render();
    assert!(outcome.into_result().unwrap());
    assert!(
        trace.contains("deliver udp client:49152 -> server:7"),
        "{trace}"
    );
    assert!(
        trace.contains("drop udp server:7 -> client:49152 (1 bytes): partition"),
        "{trace}"
    );
}

#[test]
fn duplication_and_reordering_show_up_in_what_arrives() {
    let outcome = Sim::new(3).run(async {
        let server = Host::new("server", || async { Ok(()) });
        let client = idle("client");
        net::set_link_oneway(
            "client",
            "server",
            LinkConfig::default()
                .latency(Latency::Constant(Duration::from_millis(10)))
                .duplicate(0.3)
                .reorder(0.3),
        );
        let received = server.spawn(async {
            let socket = UdpSocket::bind("0.0.0.0:9").await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0; 4];
            while let Ok(Ok((_, _))) =
                timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
            {
                got.push(buf[0]);
            }
            got
        });
        client
            .spawn(async {
                let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                for i in 0..50u8 {
                    socket.send_to(&[i], "server:9").await.unwrap();
                    sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .unwrap();
        received.await.unwrap()
    });
    let trace = outcome.trace().render();
    let got = outcome.into_result().unwrap();
    assert!(got.len() > 50, "duplicates arrive: {got:?}");
    assert!(
        got.windows(2).any(|w| w[0] > w[1]),
        "some datagram was overtaken: {got:?}"
    );
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, (0..50).collect::<Vec<u8>>(), "nothing lost");
    assert!(
        trace.contains("duplicate udp client:49152 -> server:9 (1 bytes)"),
        "{trace}"
    );
}

#[test]
fn datagrams_to_a_port_without_a_socket_or_a_down_host_are_dropped() {
    let outcome = Sim::new(4).run(async {
        let server = idle("server");
        let client = idle("client");
        client
            .spawn(async move {
                let socket = UdpSocket::bind("0.0.0.0:5000").await.unwrap();
                socket.send_to(b"a", "server:1").await.unwrap();
                sleep(Duration::from_millis(10)).await;
                server.crash();
                socket.send_to(b"b", "server:1").await.unwrap();
                sleep(Duration::from_millis(10)).await;
                let too_big = socket
                    .send_to(&vec![0; 70_000], "server:1")
                    .await
                    .unwrap_err();
                (too_big.kind(), socket.local_addr().unwrap().to_string())
            })
            .await
            .unwrap()
    });
    let trace = outcome.trace().render();
    let (kind, local) = outcome.into_result().unwrap();
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert_eq!(local, "10.0.0.2:5000");
    assert!(
        trace.contains("drop udp client:5000 -> server:1 (1 bytes): no socket"),
        "{trace}"
    );
    assert!(
        trace.contains("drop udp client:5000 -> server:1 (1 bytes): host down"),
        "{trace}"
    );
}

#[test]
fn a_message_in_flight_is_pending_work_not_a_deadlock() {
    let outcome = Sim::new(5).run(async {
        net::set_default_link(LinkConfig::constant(Duration::from_secs(10)));
        let server = idle("server");
        let client = idle("client");
        let got = server.spawn(async {
            let socket = UdpSocket::bind("0.0.0.0:9").await.unwrap();
            let mut buf = [0; 4];
            socket.recv_from(&mut buf).await.unwrap();
            Instant::now()
        });
        client
            .spawn(async {
                let socket = UdpSocket::bind("0.0.0.0:0").await.unwrap();
                socket.send_to(b"slow", "server:9").await.unwrap();
            })
            .await
            .unwrap();
        got.await.unwrap()
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        Instant::START + Duration::from_secs(10)
    );
}

/// Under any fault plan, every datagram received was sent, intact, and
/// arrives at most twice per send (once plus one duplicate).
#[test]
fn under_random_faults_datagrams_arrive_intact_at_most_twice() {
    use lockstep::fault::FaultPlan;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    let mut lost = 0;
    for seed in 0..24u64 {
        let seen: Rc<RefCell<BTreeMap<u16, u32>>> = Rc::default();
        let sent: Rc<RefCell<BTreeMap<u16, u32>>> = Rc::default();
        let (s, t) = (seen.clone(), sent.clone());
        let outcome = Sim::builder()
            .seed(seed)
            .faults(FaultPlan::random_over(1.0, Duration::from_secs(10)))
            .build()
            .run(async move {
                net::set_default_link(LinkConfig::default().loss(0.1).duplicate(0.2).reorder(0.2));
                Host::new("server", move || {
                    let s = s.clone();
                    async move {
                        let socket = UdpSocket::bind("0.0.0.0:7").await?;
                        let mut buf = [0; 64];
                        loop {
                            let (n, _) = socket.recv_from(&mut buf).await?;
                            assert_eq!(n, 40, "datagrams arrive whole");
                            let id = u16::from_le_bytes([buf[0], buf[1]]);
                            assert!(buf[2..n].iter().all(|&b| b == buf[0] ^ buf[1]), "intact");
                            *s.borrow_mut().entry(id).or_default() += 1;
                        }
                    }
                });
                // A restarted client starts over: count what it sends.
                Host::new("client", move || {
                    let t = t.clone();
                    async move {
                        let socket = UdpSocket::bind("0.0.0.0:0").await?;
                        for id in 0..1000u16 {
                            let [a, b] = id.to_le_bytes();
                            let mut msg = [a ^ b; 40];
                            msg[..2].copy_from_slice(&[a, b]);
                            socket.send_to(&msg, "server:7").await?;
                            *t.borrow_mut().entry(id).or_default() += 1;
                            sleep(Duration::from_millis(10)).await;
                        }
                        Ok(())
                    }
                });
                sleep(Duration::from_secs(15)).await;
            });
        assert!(outcome.is_ok(), "seed {seed}: {:?}", outcome.failure());
        let (seen, sent) = (seen.borrow(), sent.borrow());
        for (id, &n) in seen.iter() {
            let times = sent.get(id).copied().unwrap_or(0);
            assert!(times > 0, "seed {seed}: datagram {id} was never sent");
            assert!(
                n <= 2 * times,
                "seed {seed}: datagram {id} sent {times}x, received {n}x"
            );
        }
        lost += sent.keys().filter(|id| !seen.contains_key(id)).count();
    }
    assert!(lost > 0, "faults lose datagrams");
}
