//! Hosts: tasks on hosts, leaks, crash and restart, pause, clocks.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use futures::{AsyncReadExt, AsyncWriteExt};
use lockstep::net::{self, Host, LinkConfig, TcpListener, TcpStream};
use lockstep::prelude::*;

/// A counter server: each connection reads one byte and gets back how many
/// requests this incarnation has served (state held in memory).
fn counter_server(starts: Rc<Cell<u32>>) -> Host {
    Host::new("server", move || {
        starts.set(starts.get() + 1);
        async {
            let served = Rc::new(Cell::new(0u8));
            let listener = TcpListener::bind("0.0.0.0:80").await?;
            loop {
                let (mut stream, _) = listener.accept().await?;
                let served = served.clone();
                lockstep::spawn(async move {
                    let mut buf = [0; 1];
                    while stream.read(&mut buf).await? == 1 {
                        served.set(served.get() + 1);
                        stream.write_all(&[served.get()]).await?;
                    }
                    Ok::<_, io::Error>(())
                });
            }
        }
    })
}

async fn request(stream: &mut TcpStream) -> io::Result<u8> {
    stream.write_all(b"?").await?;
    let mut buf = [0; 1];
    stream.read_exact(&mut buf).await?;
    Ok(buf[0])
}

#[test]
fn crash_loses_memory_restart_runs_the_factory_again_and_peers_see_a_reset() {
    let starts = Rc::new(Cell::new(0));
    let s = starts.clone();
    let outcome = Sim::new(0xc4a5).run(async move {
        net::set_default_link(LinkConfig::constant(Duration::from_millis(5)));
        let server = counter_server(s);
        let client = Host::new("client", || async { Ok(()) });
        client
            .spawn(async move {
                let mut a = TcpStream::connect("server:80").await?;
                let before = (request(&mut a).await?, request(&mut a).await?);
                server.crash();
                assert!(!server.is_up());
                let reset = request(&mut a).await.unwrap_err();
                let refused = TcpStream::connect("server:80").await.unwrap_err();
                server.restart();
                sleep(Duration::from_millis(1)).await;
                let mut b = TcpStream::connect("server:80").await?;
                let after = request(&mut b).await?;
                Ok::<_, io::Error>((before, reset.kind(), refused.kind(), after))
            })
            .await
            .unwrap()
    });
    let trace = outcome.trace().render();
    let (before, reset, refused, after) = outcome.into_result().unwrap().unwrap();
    assert_eq!(before, (1, 2));
    assert_eq!(reset, io::ErrorKind::ConnectionReset);
    assert_eq!(
        refused,
        io::ErrorKind::TimedOut,
        "a crashed host does not answer SYNs"
    );
    assert_eq!(after, 1, "the restarted server starts from fresh state");
    assert_eq!(starts.get(), 2, "the factory ran again");
    assert!(trace.contains("fault: crash server"), "{trace}");
    assert!(
        trace.contains("tcp reset client:49152 -> server:80: peer crashed"),
        "{trace}"
    );
    assert!(trace.contains("fault: restart server"), "{trace}");
}

#[test]
fn host_tasks_are_not_leaks_but_other_tasks_still_are() {
    let quiet = Sim::new(1).run(async {
        let server = Host::new("server", || async {
            loop {
                sleep(Duration::from_secs(1)).await;
            }
        });
        server.spawn(async {
            lockstep::spawn(futures::future::pending::<()>()); // inherits the host
            futures::future::pending::<()>().await
        });
        sleep(Duration::from_secs(5)).await;
    });
    assert!(quiet.is_ok(), "{:?}", quiet.failure());

    let leaky = Sim::new(1).run(async {
        Host::new("server", || async { Ok(()) });
        lockstep::spawn(futures::future::pending::<()>());
    });
    let text = leaky.failure().unwrap().to_string();
    assert!(text.starts_with("leak: 1 task was still alive"), "{text}");
}

#[test]
fn tasks_spawned_by_host_tasks_are_dropped_with_the_host() {
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let d = dropped.clone();
    let outcome = Sim::new(2).run(async move {
        struct Guard(&'static str, Rc<RefCell<Vec<&'static str>>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.1.borrow_mut().push(self.0);
            }
        }
        let host = Host::new("worker", || async { Ok(()) });
        let (d1, d2) = (d.clone(), d.clone());
        let parent = host.spawn(async move {
            let _g = Guard("parent", d1);
            lockstep::spawn(async move {
                let _g = Guard("child", d2);
                futures::future::pending::<()>().await
            });
            futures::future::pending::<()>().await
        });
        sleep(Duration::from_millis(1)).await;
        host.crash();
        let late = host.spawn(async { 1 });
        (
            parent.await.unwrap_err().is_cancelled(),
            late.await.unwrap_err().is_cancelled(),
        )
    });
    assert_eq!(outcome.into_result().unwrap(), (true, true));
    assert_eq!(*dropped.borrow(), ["parent", "child"]);
}

#[test]
fn a_paused_host_runs_nothing_while_time_and_the_network_go_on() {
    let outcome = Sim::new(3).run(async {
        let ticks = Rc::new(RefCell::new(Vec::new()));
        let t = ticks.clone();
        let host = Host::new("gc", || async { Ok(()) });
        host.spawn(async move {
            loop {
                sleep(Duration::from_millis(100)).await;
                t.borrow_mut().push(Instant::now().as_nanos() / 1_000_000);
            }
        });
        sleep(Duration::from_millis(250)).await;
        host.pause_for(Duration::from_millis(1000));
        assert!(host.is_paused());
        sleep(Duration::from_millis(1100)).await;
        assert!(!host.is_paused());
        ticks.take()
    });
    let trace = outcome.trace().render();
    // Ticks at 100, 200 ms; paused 250..1250 ms; the 300 ms tick runs late
    // at 1250 ms, then the loop goes on from there.
    assert_eq!(outcome.into_result().unwrap(), [100, 200, 1250, 1350]);
    assert!(trace.contains("fault: pause gc for 1.000s"), "{trace}");
    assert!(
        trace.contains("1.250s  -                  fault: resume gc"),
        "{trace}"
    );
}

#[test]
fn a_task_of_a_paused_host_is_reported_as_such_in_a_deadlock() {
    let outcome = Sim::new(4).run(async {
        let host = Host::new("frozen", || async { Ok(()) });
        let h = host.spawn(async { 7 });
        host.pause();
        h.await.unwrap()
    });
    let text = outcome.failure().unwrap().to_string();
    assert!(
        text.contains("ready to run, but its host is paused"),
        "{text}"
    );
}

#[test]
fn clock_skew_and_drift_change_what_a_host_reads_and_how_long_it_sleeps() {
    let outcome = Sim::new(5).run(async {
        let fast = Host::new("fast", || async { Ok(()) });
        let skewed = Host::new("skewed", || async { Ok(()) });
        fast.clock_drift(100_000); // +10%
        skewed.clock_forward(Duration::from_secs(60));
        let slept = fast
            .spawn(async {
                let local = Instant::now();
                sleep(Duration::from_millis(1100)).await;
                (Instant::now() - local, lockstep::time::now())
            })
            .await
            .unwrap();
        let sim_now = Instant::now();
        let read = skewed.spawn(async { Instant::now() }).await.unwrap();
        skewed.clock_back(Duration::from_secs(90));
        let after_step_back = skewed.now();
        (slept, sim_now, read, after_step_back, fast.now())
    });
    let trace = outcome.trace().render();
    let ((local_slept, _), sim_now, read, back, fast_now) = outcome.into_result().unwrap();
    assert_eq!(
        local_slept,
        Duration::from_millis(1100),
        "the host clock measured 1.1 s"
    );
    assert_eq!(
        sim_now,
        Instant::START + Duration::from_secs(1),
        "1.1 s on a +10% clock is 1 s"
    );
    assert_eq!(read, Instant::START + Duration::from_secs(61));
    assert_eq!(back, Instant::START, "a step back below zero is clamped");
    assert_eq!(fast_now, Instant::START + Duration::from_millis(1100));
    assert!(
        trace.contains("fault: clock-drift fast +100000ppm"),
        "{trace}"
    );
    assert!(
        trace.contains("fault: clock-skew skewed +60.000s"),
        "{trace}"
    );
    assert!(
        trace.contains("fault: clock-skew skewed -90.000s"),
        "{trace}"
    );
}

#[test]
fn a_host_main_future_error_is_traced_not_a_failure() {
    let outcome = Sim::new(6).run(async {
        Host::new("taken", || async {
            let _a = TcpListener::bind("0.0.0.0:80").await?;
            let _b = TcpListener::bind("0.0.0.0:80").await?;
            Ok(())
        });
        sleep(Duration::from_millis(1)).await;
    });
    let trace = outcome.trace().render();
    assert!(outcome.is_ok());
    assert!(
        trace.contains(
            "host taken: main returned an error: tcp port 80 is already bound on host taken"
        ),
        "{trace}"
    );
    assert!(trace.contains("host taken: up at 10.0.0.1"), "{trace}");
}

#[test]
fn host_names_must_be_unique_and_usable() {
    let twice = Sim::new(7).run(async {
        Host::new("a", || async { Ok(()) });
        Host::new("a", || async { Ok(()) });
    });
    let text = twice.failure().unwrap().to_string();
    assert!(text.contains("a host named `a` already exists"), "{text}");
    let bad = Sim::new(7).run(async {
        Host::new("10.0.0.1", || async { Ok(()) });
    });
    let text = bad.failure().unwrap().to_string();
    assert!(text.contains("is not a usable host name"), "{text}");
    let unknown = Sim::new(7).run(async { net::partition("x", "y") });
    let text = unknown.failure().unwrap().to_string();
    assert!(
        text.contains("`lockstep::net::partition`: no host named `x` (no host exists yet)"),
        "{text}"
    );
}

#[test]
fn host_handles_find_hosts_and_tell_where_a_task_runs() {
    let outcome = Sim::new(8).run(async {
        let a = Host::new("alpha", || async { Ok(()) });
        let here = a
            .spawn(async { Host::current().map(|h| h.name().to_string()) })
            .await
            .unwrap();
        let found = Host::lookup("alpha").map(|h| h.addr().to_string());
        (
            here,
            found,
            Host::current().is_none(),
            Host::lookup("beta").is_none(),
        )
    });
    assert_eq!(
        outcome.into_result().unwrap(),
        (
            Some("alpha".to_string()),
            Some("10.0.0.1".to_string()),
            true,
            true
        )
    );
}

#[test]
fn a_factory_with_its_own_error_type_makes_a_host_with_from_factory() {
    async fn serve() -> std::io::Result<()> {
        let _listener = lockstep::net::TcpListener::bind("0.0.0.0:80").await?;
        Err(std::io::Error::other("bye"))
    }
    let outcome = Sim::new(1).run(async {
        Host::from_factory("server", serve);
        Host::from_factory("other", || async { Err::<(), _>("a string error") });
        sleep(Duration::from_millis(1)).await;
    });
    let trace = outcome.trace().render();
    outcome.into_result().unwrap();
    assert!(trace.contains("bye"), "{trace}");
    assert!(trace.contains("a string error"), "{trace}");
}

#[test]
fn a_client_host_runs_spawned_tasks_without_a_server_loop() {
    let outcome = Sim::new(1).run(async {
        let client = Host::client("client");
        client
            .spawn(async { Host::current().map(|h| h.name().to_string()) })
            .await
            .unwrap()
    });
    assert_eq!(outcome.into_result().unwrap().as_deref(), Some("client"));
}

thread_local! {
    static OLD_HOST: RefCell<Option<Host>> = const { RefCell::new(None) };
}

#[test]
fn a_host_handle_from_an_earlier_run_panics_with_a_clear_message() {
    Sim::new(1)
        .run(async {
            let h = Host::client("old");
            OLD_HOST.with(|o| *o.borrow_mut() = Some(h));
        })
        .into_result()
        .unwrap();
    let outcome = Sim::new(2).run(async {
        let old = OLD_HOST.with(|o| o.borrow_mut().take()).unwrap();
        old.crash();
    });
    let text = outcome.into_result().unwrap_err().to_string();
    assert!(
        text.contains("this Host handle was made by an earlier simulation run"),
        "{text}"
    );
    assert!(
        text.contains("tests/hosts.rs"),
        "points at the caller: {text}"
    );
}
