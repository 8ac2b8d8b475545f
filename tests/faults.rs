//! Fault plans, buggify points, a leader-election toy that splits its brain
//! under a partition, and byte-for-byte replay of faulty runs.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::rc::Rc;

use futures::{AsyncReadExt, AsyncWriteExt};
use lockstep::fault::{self, FaultAction, FaultPlan};
use lockstep::net::{self, Host, LinkConfig, TcpListener, TcpStream, UdpSocket};
use lockstep::prelude::*;
use lockstep::trace::RenderOptions;

/// As in `tests/trace.rs` (insta names a snapshot after the file that
/// asserts it, so the helper cannot move to a shared module).
fn snapshot(name: &str, text: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

// ----- the plan as data ----------------------------------------------------

#[test]
fn a_plan_round_trips_through_its_text_form_and_serde() {
    let text = "\
# a switch reboots, then the server crashes and comes back
at 2.5s partition client server
at 7s heal client server
at 7s partition-oneway a b   # one way
at 8s heal-oneway a b
at 9.500s crash server
at 10s restart server
at 12s pause client for 1.5s
at 13s resume client
at 15s clock-skew server -250ms
at 16s clock-drift server +200ppm
at 17s link-loss a b 0.25
at 18s link-delay a b 150ms
at 19s link-restore a b
at 20s heal-all
at 0s random 0.2 for 30s
";
    let plan: FaultPlan = text.parse().unwrap();
    assert_eq!(plan.actions.len(), 15);
    assert_eq!(
        plan.actions[0].action,
        FaultAction::Random {
            intensity: 0.2,
            horizon: Duration::from_secs(30)
        }
    );
    assert_eq!(plan.actions[1].at, Duration::from_millis(2500));
    let printed = plan.to_string();
    assert!(
        printed.contains("at 2.500s partition client server\n"),
        "{printed}"
    );
    assert!(
        printed.contains("at 15.000s clock-skew server -0.250s\n"),
        "{printed}"
    );
    assert!(
        printed.contains("at 16.000s clock-drift server +200ppm\n"),
        "{printed}"
    );
    assert_eq!(printed.parse::<FaultPlan>().unwrap(), plan);
    let json = serde_json::to_string(&plan).unwrap();
    assert!(
        json.contains(r#""action":"partition-oneway","from":"a","to":"b""#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<FaultPlan>(&json).unwrap(), plan);
    let built = FaultPlan::new()
        .at(
            Duration::from_secs(7),
            FaultAction::Heal {
                a: "client".into(),
                b: "server".into(),
            },
        )
        .at(
            Duration::from_millis(2500),
            FaultAction::Partition {
                a: "client".into(),
                b: "server".into(),
            },
        );
    assert_eq!(
        built.to_string(),
        "at 2.500s partition client server\nat 7.000s heal client server\n"
    );
}

#[test]
fn a_plan_that_does_not_parse_says_where_what_and_what_is_accepted() {
    let cases = [
        (
            "at 1s partition a",
            1,
            "`partition` takes the form `partition A B`",
        ),
        (
            "\n\nat 1s explode a",
            3,
            "unknown action `explode`; the actions are: partition A B",
        ),
        (
            "crash a",
            1,
            "expected `at DURATION ACTION`, like `at 2.5s crash server`",
        ),
        (
            "at soon crash a",
            1,
            "`soon` is not a duration (expected a number and a unit",
        ),
        (
            "at 1s link-loss a b 1.5",
            1,
            "`1.5` is not a probability (expected 0.0 to 1.0)",
        ),
        (
            "at 1s clock-drift a fast",
            1,
            "`fast` is not a drift (expected `+100ppm` or `-50ppm`)",
        ),
        (
            "at 1s pause a 3s",
            1,
            "`pause` takes the form `pause HOST for DURATION`",
        ),
        ("at 1.0000000001s heal-all", 1, "finer than a nanosecond"),
    ];
    for (text, line, needle) in cases {
        let err = text.parse::<FaultPlan>().unwrap_err();
        assert_eq!(err.line, line, "{text}: {err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("fault plan line {line}: ")),
            "{msg}"
        );
        assert!(msg.contains(needle), "{text}: {msg}");
    }
}

#[test]
fn generated_plans_are_pure_functions_of_their_seed() {
    let horizon = Duration::from_secs(30);
    let a = FaultPlan::generate(11, 0.7, horizon);
    assert_eq!(a, FaultPlan::generate(11, 0.7, horizon));
    assert_ne!(a, FaultPlan::generate(12, 0.7, horizon));
    assert!(
        a.actions.windows(2).all(|w| w[0].at <= w[1].at),
        "time-ordered"
    );
    assert_eq!(a.actions.last().unwrap().action, FaultAction::HealAll);
    assert_eq!(
        FaultPlan::generate(11, 0.0, horizon).actions,
        FaultPlan::new().at(horizon, FaultAction::HealAll).actions
    );
    let kinds: BTreeSet<String> = (0..50)
        .flat_map(|s| FaultPlan::generate(s, 1.0, horizon).actions)
        .map(|t| t.action.to_string().split(' ').next().unwrap().to_string())
        .collect();
    for kind in [
        "partition",
        "heal",
        "crash",
        "restart",
        "pause",
        "clock-skew",
        "link-loss",
        "link-delay",
        "link-restore",
    ] {
        assert!(kinds.contains(kind), "{kind} never drawn: {kinds:?}");
    }
}

// ----- plans applied in a run ----------------------------------------------

#[test]
fn a_plan_applies_each_action_at_its_time_and_traces_it() {
    let plan: FaultPlan = "at 1s partition a b\nat 2s heal a b\nat 3s crash b\nat 4s restart b"
        .parse()
        .unwrap();
    let outcome = Sim::builder().seed(1).faults(plan).build().run(async {
        Host::new("a", || async { Ok(()) });
        let b = Host::new("b", || async { Ok(()) });
        sleep(Duration::from_millis(3500)).await;
        let down = !b.is_up();
        sleep(Duration::from_secs(1)).await;
        (down, b.is_up())
    });
    let trace = outcome.trace().render();
    assert_eq!(outcome.into_result().unwrap(), (true, true));
    for line in [
        "1.000s  -                  fault: partition a b",
        "2.000s  -                  fault: heal a b",
        "3.000s  -                  fault: crash b",
        "4.000s  -                  fault: restart b",
    ] {
        assert!(trace.contains(line), "{line}\n{trace}");
    }
}

#[test]
fn a_plan_naming_a_host_that_does_not_exist_fails_the_run_clearly() {
    let plan: FaultPlan = "at 1s crash serverr".parse().unwrap();
    let outcome = Sim::builder().seed(1).faults(plan).build().run(async {
        Host::new("server", || async { Ok(()) });
        sleep(Duration::from_secs(2)).await;
    });
    let failure = outcome.failure().unwrap();
    let text = failure.to_string();
    assert!(
        text.contains(
            "fault plan action `crash serverr` at 1.000s: no host named `serverr` (hosts: server)"
        ),
        "{text}"
    );
    // Bad input in the plan, not a task panic.
    assert_eq!(failure.kind().name(), "invalid-fault", "{text}");
    assert!(text.contains("seed 0x1, virtual time 1.000s"), "{text}");
    assert!(!text.contains("main task"), "{text}");
}

#[test]
fn slot_actions_before_any_host_exists_are_skipped_and_traced() {
    let plan: FaultPlan = "at 0s crash @1\nat 1s partition @0 @3".parse().unwrap();
    let outcome = Sim::builder().seed(1).faults(plan).build().run(async {
        sleep(Duration::from_millis(500)).await;
        Host::new("only", || async { Ok(()) });
        sleep(Duration::from_secs(1)).await;
    });
    let trace = outcome.trace().render();
    assert!(outcome.is_ok());
    assert!(
        trace.contains("fault: skipped `crash @1`: no host exists yet"),
        "{trace}"
    );
    assert!(
        trace.contains("fault: skipped `partition @0 @3`: both slots are host only"),
        "{trace}"
    );
}

// ----- buggify -------------------------------------------------------------

fn flaky_read(len: usize) -> usize {
    if lockstep::buggify!() { len / 2 } else { len }
}

#[test]
fn buggify_fires_for_some_seeds_replays_and_is_off_when_disabled() {
    let run = |seed: u64, enabled: bool| {
        Sim::builder()
            .seed(seed)
            .buggify(enabled)
            .build()
            .run(async { (0..20).filter(|_| flaky_read(8) == 4).count() })
    };
    let fired: Vec<usize> = (0..40)
        .map(|s| run(s, true).into_result().unwrap())
        .collect();
    assert!(
        fired.iter().any(|&n| n > 0) && fired.contains(&0),
        "{fired:?}"
    );
    let seed = fired.iter().position(|&n| n > 0).unwrap() as u64;
    let (a, b) = (run(seed, true), run(seed, true));
    assert_eq!(a.trace().render(), b.trace().render());
    assert!(
        a.trace()
            .render()
            .contains("buggify fired at tests/faults.rs:"),
        "{}",
        a.trace().render()
    );
    assert!((0..40).all(|s| run(s, false).into_result().unwrap() == 0));
    assert_eq!(flaky_read(8), 8, "never outside a simulation");
}

// ----- a leader-election toy -----------------------------------------------

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Who believes it leads, seen by an all-knowing observer (the test).
type Leaders = Rc<RefCell<BTreeSet<&'static str>>>;

/// Held while a node leads; claiming fails loudly if another node leads.
struct Leadership(&'static str, Leaders);

impl Leadership {
    fn claim(name: &'static str, leaders: &Leaders) -> Leadership {
        let others: Vec<_> = leaders.borrow().iter().copied().collect();
        assert!(
            others.is_empty(),
            "split brain: {name} became leader while {others:?} still lead"
        );
        leaders.borrow_mut().insert(name);
        lockstep::trace!("{name} leads");
        Leadership(name, leaders.clone())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.1.borrow_mut().remove(self.0);
    }
}

/// A naive leader election: the leader heartbeats every 200 ms; a follower
/// that hears nothing for 1 s takes over; a leader that hears a lower name
/// steps down. Correct on a perfect network, and wrong under a partition:
/// nothing stops two sides from electing a leader each.
fn node(name: &'static str, leaders: Leaders) -> Host {
    Host::new(name, move || {
        let leaders = leaders.clone();
        async move {
            let socket = UdpSocket::bind("0.0.0.0:9").await?;
            let mut leading = (name == "n1").then(|| Leadership::claim(name, &leaders));
            let mut buf = [0; 8];
            loop {
                if leading.is_some() {
                    for peer in NODES.iter().filter(|&&p| p != name) {
                        socket.send_to(name.as_bytes(), (*peer, 9)).await?;
                    }
                    let next = Instant::now() + Duration::from_millis(200);
                    while let Ok(got) =
                        lockstep::time::timeout_at(next, socket.recv_from(&mut buf)).await
                    {
                        let (n, _) = got?;
                        if &buf[..n] < name.as_bytes() {
                            lockstep::trace!("{name} steps down");
                            leading = None;
                            break;
                        }
                    }
                } else if timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
                    .await
                    .is_err()
                {
                    leading = Some(Leadership::claim(name, &leaders));
                }
            }
        }
    })
}

fn election(seed: u64, plan: Option<FaultPlan>, verbosity: Verbosity) -> Outcome<()> {
    let mut builder = Sim::builder().seed(seed).verbosity(verbosity);
    if let Some(plan) = plan {
        builder = builder.faults(plan);
    }
    builder.build().run(async {
        let leaders: Leaders = Rc::default();
        for name in NODES {
            node(name, leaders.clone());
        }
        sleep(Duration::from_secs(20)).await;
    })
}

/// Partitions only, drawn from the seed: the fault the toy cannot survive.
fn partitions(seed: u64) -> FaultPlan {
    let plan = FaultPlan::generate(seed, 0.5, Duration::from_secs(20));
    FaultPlan::from_actions(plan.actions.into_iter().filter(|t| {
        matches!(
            t.action,
            FaultAction::Partition { .. }
                | FaultAction::PartitionOneWay { .. }
                | FaultAction::Heal { .. }
                | FaultAction::HealOneWay { .. }
                | FaultAction::HealAll
        )
    }))
}

#[test]
fn the_election_is_correct_without_faults_and_splits_under_a_partition() {
    for seed in 0..10 {
        let outcome = election(seed, None, Verbosity::Off);
        assert!(outcome.is_ok(), "seed {seed}: {:?}", outcome.failure());
    }
    let failing = (0..30u64)
        .find(|&seed| {
            election(seed, Some(partitions(seed)), Verbosity::Off)
                .failure()
                .is_some()
        })
        .expect("some seed in 0..30 partitions the leader away for over a second");
    let plan = partitions(failing);
    let first = election(failing, Some(plan.clone()), Verbosity::Full);
    let replay = election(failing, Some(plan.clone()), Verbosity::Full);
    let text = first.failure().unwrap().to_string();
    assert!(text.contains("split brain"), "{text}");
    assert!(first.trace().render().contains("fault: partition"));
    assert_eq!(
        first.trace().render(),
        replay.trace().render(),
        "the failing seed replays"
    );
    assert_eq!(first.determinism_hash(), replay.determinism_hash());
    let summary = election(failing, Some(plan.clone()), Verbosity::Summary);
    snapshot(
        "election_split_brain",
        format!(
            "seed {failing:#x}\nplan:\n{plan}\ntrace (summary):\n{}",
            summary.trace().render_with(&RenderOptions::stable())
        ),
    );
}

// ----- replay of faulty runs -------------------------------------------------

/// Echo over streams and datagrams with retries, under whatever faults the
/// plan brings. Errors are expected (resets, timeouts): they are logged.
async fn echo_workload() {
    net::set_default_link(
        LinkConfig::default()
            .loss(0.1)
            .duplicate(0.05)
            .reorder(0.05),
    );
    Host::new("server", || async {
        let udp = UdpSocket::bind("0.0.0.0:7").await?;
        lockstep::spawn(async move {
            let mut buf = [0; 64];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                let _ = udp.send_to(&buf[..n], from).await;
            }
        });
        let listener = TcpListener::bind("0.0.0.0:7").await?;
        loop {
            let (mut s, _) = listener.accept().await?;
            lockstep::spawn(async move {
                let mut buf = [0; 64];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut clients = Vec::new();
    for i in 0..2 {
        let host = Host::new(format!("client{i}"), || async { Ok(()) });
        clients.push(host.spawn(async move {
            let udp = UdpSocket::bind("0.0.0.0:0").await.unwrap();
            let mut buf = [0; 64];
            for round in 0..20u8 {
                let _ = udp.send_to(&[round], "server:7").await;
                let r = timeout(Duration::from_millis(300), udp.recv_from(&mut buf)).await;
                lockstep::trace!(
                    "udp {round}: {}",
                    if r.is_ok() { "answered" } else { "timed out" }
                );
                let tcp = timeout(Duration::from_secs(2), async {
                    let mut s = TcpStream::connect("server:7").await?;
                    s.write_all(&[round; 3]).await?;
                    let mut back = [0; 3];
                    s.read_exact(&mut back).await?;
                    Ok::<_, io::Error>(back)
                })
                .await;
                lockstep::trace!("tcp {round}: {:?}", tcp.map(|r| r.map_err(|e| e.kind())));
                sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    for c in clients {
        if c.await.is_err() {
            lockstep::trace!("a client was crashed");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_network_trace_under_a_random_fault_plan() {
    for seed in 0..4u64 {
        let sim = Sim::builder()
            .seed(seed)
            .faults(FaultPlan::random(0.8))
            .build();
        let (a, b) = (sim.run(echo_workload()), sim.run(echo_workload()));
        assert!(a.is_ok(), "seed {seed}: {:?}", a.failure());
        assert_eq!(a.trace().render(), b.trace().render(), "seed {seed}");
        assert_eq!(a.determinism_hash(), b.determinism_hash());
        assert!(a.trace().render().contains("fault: random 0.8 for 30.000s"));
        assert!(sim.run_checking_determinism(echo_workload).is_ok());
    }
    let differ = Sim::new(0).run(echo_workload()).determinism_hash()
        != Sim::builder()
            .seed(0)
            .faults(FaultPlan::random(0.8))
            .build()
            .run(echo_workload())
            .determinism_hash();
    assert!(differ, "faults change the run");
}

#[test]
fn a_faulty_run_trace_snapshot() {
    let plan: FaultPlan = "\
at 1.2s partition client0 server
at 2.6s heal client0 server
at 3.1s crash server
at 3.6s restart server
at 4s pause client1 for 1s"
        .parse()
        .unwrap();
    let outcome = Sim::builder().seed(0x5eed).faults(plan).build().run(async {
        let run = echo_workload();
        let _ = timeout(Duration::from_secs(6), run).await;
    });
    assert!(outcome.is_ok(), "{:?}", outcome.failure());
    let jsonl = outcome.trace().to_jsonl();
    assert!(
        jsonl.contains(r#""event":"net-drop""#),
        "network events serialize"
    );
    assert_eq!(
        &lockstep::trace::Trace::from_jsonl(&jsonl).unwrap(),
        outcome.trace()
    );
    let trace = outcome.trace().render_with(&RenderOptions::stable());
    let relevant: Vec<&str> = trace
        .lines()
        .filter(|l| !l.ends_with(" poll") && !l.contains(" timer ") && !l.contains(" wake "))
        .collect();
    snapshot("faulty_echo_seed_0x5eed", relevant.join("\n"));
}

#[test]
fn fault_apply_schedules_relative_to_now() {
    let outcome = Sim::new(9).run(async {
        Host::new("a", || async { Ok(()) });
        Host::new("b", || async { Ok(()) });
        sleep(Duration::from_secs(10)).await;
        fault::apply(&"at 1s partition a b".parse().unwrap());
        sleep(Duration::from_secs(2)).await;
    });
    assert!(
        outcome
            .trace()
            .render()
            .contains("11.000s  -                  fault: partition a b")
    );
}

#[test]
fn a_plan_action_naming_an_unknown_host_is_reported_even_if_the_run_ends_before_it() {
    let plan: FaultPlan = "at 1s crash server\nat 60s crash serverr".parse().unwrap();
    let outcome = Sim::builder().seed(1).faults(plan).build().run(async {
        lockstep::net::Host::new("server", || async { Ok(()) });
        sleep(Duration::from_secs(2)).await;
    });
    let failure = outcome.into_result().unwrap_err();
    assert_eq!(failure.kind(), lockstep::check::FailureKind::InvalidFault);
    let text = failure.to_string();
    assert!(text.contains("`crash serverr`"), "{text}");
    assert!(
        text.contains(
            "never applied: due at 60.000s, after the run ended; no host named `serverr`"
        ),
        "{text}"
    );
}

#[test]
fn plan_actions_past_the_end_that_name_existing_hosts_are_fine() {
    let plan: FaultPlan = "at 1s crash server\nat 60s restart server".parse().unwrap();
    let outcome = Sim::builder().seed(1).faults(plan).build().run(async {
        lockstep::net::Host::new("server", || async { Ok(()) });
        sleep(Duration::from_secs(2)).await;
    });
    outcome.into_result().unwrap();
}

#[test]
fn random_plans_hit_short_runs_and_always_name_two_distinct_hosts() {
    let mut hit = 0;
    for seed in 0..40u64 {
        let outcome = Sim::builder()
            .seed(seed)
            .faults(FaultPlan::random(0.5))
            .build()
            .run(async {
                lockstep::net::Host::client("a");
                lockstep::net::Host::client("b");
                sleep(Duration::from_millis(300)).await;
            });
        let trace = outcome.trace().render();
        outcome.into_result().unwrap();
        assert!(!trace.contains("skipped"), "seed {seed}: {trace}");
        let applied = trace
            .lines()
            .filter(|l| l.contains("fault: ") && !l.contains("fault: random"))
            .count();
        if applied > 0 {
            hit += 1;
        }
    }
    assert!(hit >= 30, "only {hit} of 40 runs of 300 ms saw a fault");
}

#[test]
fn compound_durations_parse_in_plans() {
    let plan: FaultPlan = "at 1m30s crash server\nat 1h2m3.5s restart server"
        .parse()
        .unwrap();
    assert_eq!(plan.actions[0].at, Duration::from_secs(90));
    assert_eq!(plan.actions[1].at, Duration::from_millis(3_723_500));
    let err = "at 30m1h crash server".parse::<FaultPlan>().unwrap_err();
    assert!(err.to_string().contains("largest unit first"), "{err}");
    assert_eq!(
        lockstep::time::parse_duration("2h"),
        Ok(Duration::from_secs(7200))
    );
}
