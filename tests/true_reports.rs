//! Every failure is a true report: the report names the cause, the runs that
//! actually failed, and never hangs or aborts the test process. One test per
//! defect, each named after what it checks.

use lockstep::prelude::*;

fn failure_of<T>(outcome: &Outcome<T>) -> &Failure {
    outcome.failure().expect("the run fails")
}

#[test]
fn the_root_cause_panic_is_reported_not_a_handle_dropped_while_unwinding() {
    let outcome = Sim::new(5).run(async {
        let a = spawn(async {
            panic!("FIRST");
            #[allow(unreachable_code)]
            ()
        });
        let b = spawn(async {
            yield_now().await;
            panic!("second");
            #[allow(unreachable_code)]
            ()
        });
        sleep(Duration::from_millis(1)).await;
        a.await.unwrap();
        b.await.unwrap();
    });
    let failure = failure_of(&outcome);
    let Failure::Panic(report) = failure else {
        panic!("{failure}")
    };
    assert_eq!(report.task.id, lockstep::task::TaskId::MAIN, "{failure}");
    assert!(!report.unobserved, "{failure}");
    let text = failure.to_string();
    assert!(text.contains("FIRST"), "{text}");
    assert!(!text.contains("nobody observed"), "{text}");
    // The main task's panic, the root cause, is in the trace too.
    let trace = outcome.trace().render();
    assert!(trace.contains("FIRST"), "{trace}");
}

#[test]
fn a_panic_whose_handle_was_dropped_during_a_caught_unwind_is_still_reported() {
    let outcome = Sim::new(5).run(async {
        let b = spawn(async { panic!("second") });
        sleep(Duration::from_millis(1)).await;
        // The program catches its own panic while `b`'s handle is dropped
        // by the unwind: `b`'s panic was never observed.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _b = b;
            panic!("caught on purpose");
        }));
        assert!(caught.is_err());
    });
    let text = failure_of(&outcome).to_string();
    assert!(
        text.contains("second") && text.contains("nobody observed"),
        "{text}"
    );
}
