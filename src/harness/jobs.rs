//! Seeds on several threads, with the answer of one thread.
//!
//! A simulation is one thread and shares nothing, so seeds run side by side
//! on as many threads as asked: each worker takes the next seed index,
//! runs a fresh simulation, and sends the result back. Results are put back
//! in seed order, so what a sweep reports never depends on how many threads
//! ran it.
//!
//! A sweep that stops at a seed (the first failing seed of a `#[sim_test]`)
//! stops the same way: once a worker finds index `i`, no worker takes an
//! index above `i`, and every index below it still runs. Indices are handed
//! out in increasing order, so when the workers are done every index below
//! the smallest stopping index has run, and that index is the one a single
//! thread would have stopped at.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// `LOCKSTEP_JOBS`: how many threads run a `#[sim_test]`'s seeds
/// (default 1; `auto` for one per core).
pub(crate) fn from_env() -> Result<usize, String> {
    match std::env::var("LOCKSTEP_JOBS") {
        Ok(v) if !v.trim().is_empty() => parse(&v).map_err(|e| format!("LOCKSTEP_JOBS: {e}")),
        _ => Ok(1),
    }
}

/// Parses a thread count: a whole number ≥ 1, or `auto` (one per core).
pub(crate) fn parse(v: &str) -> Result<usize, String> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("auto") {
        return Ok(std::thread::available_parallelism().map_or(1, usize::from));
    }
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{v}` is not a number of threads: expected a whole number of at least 1, or `auto` \
             (one per core)"
        )),
    }
}

/// Runs `run(i)` for every `i` in `0..n` on `jobs` threads and returns the
/// results in index order. `progress` sees each result on the calling
/// thread as it arrives. When `stop(&result)` holds for some index, the
/// sweep ends there: the results are those of every index up to the
/// smallest such index, exactly as one thread stopping there would give.
pub(crate) fn map_ordered<T: Send>(
    n: usize,
    jobs: usize,
    run: impl Fn(usize) -> T + Sync,
    stop: impl Fn(&T) -> bool + Sync,
    mut progress: impl FnMut(usize, &T),
) -> Vec<(usize, T)> {
    let mut results = Vec::with_capacity(n);
    if jobs <= 1 || n <= 1 {
        for i in 0..n {
            let r = run(i);
            progress(i, &r);
            let last = stop(&r);
            results.push((i, r));
            if last {
                break;
            }
        }
        return results;
    }
    let next = AtomicUsize::new(0);
    let stop_at = AtomicUsize::new(usize::MAX);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..jobs.min(n) {
            let tx = tx.clone();
            let (next, stop_at, run, stop) = (&next, &stop_at, &run, &stop);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n || i > stop_at.load(Ordering::SeqCst) {
                        break;
                    }
                    let r = run(i);
                    if stop(&r) {
                        stop_at.fetch_min(i, Ordering::SeqCst);
                    }
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            progress(i, &r);
            results.push((i, r));
        }
    });
    let last = stop_at.into_inner();
    results.retain(|(i, _)| *i <= last);
    results.sort_by_key(|(i, _)| *i);
    results
}

/// The smallest `i` in `0..n` for which `run(i)` is `Some`, and its value,
/// found on `jobs` threads.
pub(crate) fn first_some<T: Send>(
    n: usize,
    jobs: usize,
    run: impl Fn(usize) -> Option<T> + Sync,
) -> Option<(usize, T)> {
    map_ordered(n, jobs, run, Option::is_some, |_, _| {})
        .into_iter()
        .find_map(|(i, r)| Some((i, r?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_hit_does_not_depend_on_the_thread_count() {
        let hits = |i: usize| (i % 7 == 5 || i == 3 || i > 40).then_some(i * 10);
        for jobs in [1, 2, 3, 8] {
            assert_eq!(first_some(100, jobs, hits), Some((3, 30)), "jobs {jobs}");
            assert_eq!(first_some(3, jobs, hits), None, "jobs {jobs}");
            let all = map_ordered(50, jobs, |i| i, |_| false, |_, _| {});
            assert_eq!(all.len(), 50);
            assert!(all.iter().enumerate().all(|(k, (i, v))| k == *i && i == v));
        }
    }

    #[test]
    fn thread_counts_parse() {
        assert_eq!(parse("2"), Ok(2));
        assert!(parse("auto").unwrap() >= 1);
        assert!(parse("0").unwrap_err().contains("at least 1"));
        assert!(parse("many").unwrap_err().contains("`auto`"));
    }
}
