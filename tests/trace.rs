//! Traces: verbosity, text and JSON-lines forms, and a snapshot.

use std::cell::Cell;
use std::rc::Rc;

use lockstep::prelude::*;
use lockstep::trace::{EventKind, RenderOptions, Trace};

async fn racy_pair() {
    let counter = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..2)
        .map(|i| {
            let c = counter.clone();
            lockstep::task::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(async move {
                    let v = c.get();
                    sleep(Duration::from_millis(10 * (i + 1))).await;
                    lockstep::trace!("worker-{i} writes {}", v + 1);
                    c.set(v + 1);
                })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    assert_eq!(counter.get(), 2, "lost update");
}

#[test]
fn lost_update_trace_snapshot() {
    // Seed 0x1 loses the update: both workers read 0 before either writes.
    let outcome = Sim::new(0x1).run(racy_pair());
    assert!(outcome.failure().is_some());
    lockstep::assert_trace_snapshot!("lost_update_seed_0x1", outcome);
}

#[test]
fn verbosity_levels_record_more_or_less() {
    let run = |v| Sim::builder().seed(1).verbosity(v).build().run(racy_pair());
    let off = run(Verbosity::Off);
    let summary = run(Verbosity::Summary);
    let full = run(Verbosity::Full);
    assert!(off.trace().is_empty());
    assert!(summary.trace().len() < full.trace().len());
    assert!(
        summary
            .trace()
            .events()
            .all(|e| e.kind.verbosity() <= Verbosity::Summary)
    );
    assert!(full.trace().events().any(|e| e.kind == EventKind::Poll));
    // The decision hash does not depend on what is traced.
    assert_eq!(off.determinism_hash(), full.determinism_hash());
    assert_eq!(summary.trace().user_lines().count(), 2);
}

#[test]
fn text_lines_show_time_task_and_event() {
    let outcome = Sim::new(1).run(racy_pair());
    let text = outcome.trace().render();
    let lines: Vec<&str> = text.lines().collect();
    // The main task's line does not depend on where `run` was called.
    assert_eq!(
        lines[0].trim_start(),
        "0.000s  -                  spawn #0 main"
    );
    assert!(
        text.contains("#0 main            spawn #1 worker-0 at tests/trace.rs:16"),
        "{text}"
    );
    assert!(
        text.contains("0.010s  -                  timer fired for #1 worker-0"),
        "{text}"
    );
    assert!(
        text.contains("#1 worker-0        log: worker-0 writes 1"),
        "{text}"
    );
    assert!(lines.last().unwrap().contains("FAILED (panic)"), "{text}");
    let stable = outcome.trace().render_with(&RenderOptions::stable());
    assert!(
        stable.contains("spawn #1 worker-0 at tests/trace.rs\n"),
        "{stable}"
    );
    assert!(stable.contains("panic at tests/trace.rs: "), "{stable}");
    assert!(
        stable.contains("the main task panicked at tests/trace.rs (seed 0x1"),
        "{stable}"
    );
}

#[test]
fn json_lines_round_trip() {
    let outcome = Sim::new(1).run(racy_pair());
    let jsonl = outcome.trace().to_jsonl();
    let first = jsonl.lines().next().unwrap();
    assert!(
        first.contains(r#""event":"spawn""#) && first.contains(r#""child":0"#),
        "{first}"
    );
    assert!(jsonl.contains(r#""name":"worker-1""#));
    assert!(jsonl.contains(r#""task_name":"worker-1""#));
    let back = Trace::from_jsonl(&jsonl).unwrap();
    assert_eq!(&back, outcome.trace());
    assert_eq!(back.render(), outcome.trace().render());
}

#[test]
fn a_trace_file_that_does_not_parse_says_where_and_why() {
    let good = Sim::new(1).run(racy_pair()).trace().to_jsonl();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(2, r#"{"step":1,"time":0,"task":0,"event":"teleport"}"#);
    let err = Trace::from_jsonl(&lines.join("\n")).unwrap_err();
    assert_eq!(err.line, 3);
    let msg = err.to_string();
    assert!(
        msg.starts_with("trace line 3 does not parse: unknown variant `teleport`"),
        "{msg}"
    );
    assert!(msg.contains("one JSON object per line"), "{msg}");
    assert_eq!(Trace::from_jsonl("not json").unwrap_err().line, 1);
}

#[test]
fn trace_lines_are_hashed_not_recorded_when_tracing_is_off() {
    struct Loud(Rc<Cell<u32>>);
    impl std::fmt::Display for Loud {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.set(self.0.get() + 1);
            f.write_str("loud")
        }
    }
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let outcome = Sim::builder()
        .verbosity(Verbosity::Off)
        .build()
        .run(async move { lockstep::trace!("{}", Loud(c)) });
    assert!(outcome.trace().is_empty());
    // Formatted once, straight into the determinism hash: the text is part
    // of the run's behaviour even when it is not recorded.
    assert_eq!(count.get(), 1);
    // Outside a simulation the arguments are not even evaluated.
    let outside = Rc::new(Cell::new(0));
    lockstep::trace!("outside a simulation: {}", Loud(outside.clone()));
    assert_eq!(outside.get(), 0);
}

#[test]
fn seeds_print_in_hex_and_parse_from_hex_or_decimal() {
    assert_eq!("0x1a7".parse::<Seed>().unwrap(), Seed(0x1a7));
    assert_eq!(" 423 ".parse::<Seed>().unwrap(), Seed(423));
    assert_eq!(
        "0XFFFF_FFFF_FFFF_FFFF".parse::<Seed>().unwrap(),
        Seed(u64::MAX)
    );
    assert_eq!(Seed(255).to_string(), "0xff");
    for (bad, why) in [
        ("", "it is empty"),
        ("0x", "no digits follow 0x"),
        ("1a7", "not a decimal digit (hex needs a 0x prefix)"),
        ("0xg", "not a hex digit"),
        ("0x1_0000_0000_0000_0000", "does not fit in 64 bits"),
        ("-1", "not a decimal digit"),
    ] {
        let msg = bad.parse::<Seed>().unwrap_err().to_string();
        assert!(msg.contains(why), "{bad:?}: {msg}");
        assert!(
            msg.contains("0x1a7") && msg.contains("423"),
            "says what is accepted: {msg}"
        );
    }
    assert!("fifo".parse::<Policy>().is_ok());
    assert!(
        "lifo"
            .parse::<Policy>()
            .unwrap_err()
            .contains("expected `random`, `fifo`, `pct`")
    );
    assert!(
        "loud"
            .parse::<Verbosity>()
            .unwrap_err()
            .contains("`off`, `summary` or `full`")
    );
}

#[test]
fn a_panic_message_ending_in_a_source_location_renders_without_line_numbers() {
    let outcome = Sim::new(1).run(async {
        panic!("bad entry in config.rs:12");
    });
    let stable = outcome.trace().render_with(&RenderOptions::stable());
    assert!(stable.contains(": bad entry in config.rs\n"), "{stable}");
    assert!(!stable.contains("config.rs:12"), "{stable}");
}
