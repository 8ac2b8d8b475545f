//! Programs shared by several integration tests.

use std::cell::Cell;
use std::rc::Rc;

/// The lost-update program of DESIGN.md: `workers` tasks each read a shared
/// counter, yield (a race window), and write back what they read plus one.
/// Fails with "lost update" for the schedules that interleave.
pub async fn lost_update(workers: usize) {
    let counter = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let c = counter.clone();
            lockstep::task::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(async move {
                    let v = c.get();
                    lockstep::task::yield_now().await;
                    c.set(v + 1);
                })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(counter.get(), workers, "lost update");
}
