//! `lockstep diff A B`: where two runs first diverge, and what differs
//! after, aligned on events rather than lines.
//!
//! A and B are trace files (JSON lines, text, an insta `.snap` or
//! `.snap.new`), failure bundles, or scenario runs `NAME/VARIANT@SEED`.
//! Events are compared by what happened (the task and the event, without
//! source line numbers, whatever the column widths), and their virtual
//! times apart, so a changed snapshot reads as a few moved, added, removed
//! or shifted events:
//!
//! ```text
//! first divergence at event 12:
//!   > A:  0.004000s  #2 worker-1  acquire mutex 'db'
//!   > B:  0.004000s  #3 worker-2  acquire mutex 'cache'
//! after it: 1 moved, 0 only in A, 0 only in B, 2 timing shifts
//!   moved: #2 worker-1 acquire mutex 'db' at 0.006000s in B (0.004000s in A)
//! ```
//!
//! On a failed snapshot in CI: `lockstep diff snapshots/x.snap
//! snapshots/x.snap.new`. Exit code 0 when the runs are the same, 1 when
//! they differ.

use std::time::{Duration, Instant};

use similar::{Algorithm, DiffOp};

use super::spec::SimArgs;
use super::trace::load;
use super::{Outcome, Scenario, exit};

/// `lockstep diff`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The first trace: a file, a bundle folder, or NAME/VARIANT@SEED.
    a: String,
    /// The second.
    b: String,
    /// Events of context shown before the divergence.
    #[arg(long, default_value_t = 3)]
    context: usize,
    /// Events listed per kind of difference.
    #[arg(long, default_value_t = 10)]
    max: usize,
    #[command(flatten)]
    sim: SimArgs,
}

/// An event as a diff sees it.
#[derive(Clone, Debug)]
struct Ev {
    /// Its virtual time, as printed (empty if the line has none).
    time: String,
    /// What happened: the rest of the line, spaces collapsed.
    what: String,
}

fn split(line: &str) -> Ev {
    let t = line.trim_start();
    let (first, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    let is_time = first
        .strip_suffix('s')
        .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok());
    let (time, rest) = if is_time { (first, rest) } else { ("", t) };
    Ev {
        time: time.to_string(),
        what: rest.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn show(e: &Ev) -> String {
    if e.time.is_empty() {
        e.what.clone()
    } else {
        format!("{:>12}  {}", e.time, e.what)
    }
}

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    let a: Vec<Ev> = load(&args.a, scenarios, &args.sim)?
        .stable_lines()
        .iter()
        .map(|l| split(l))
        .collect();
    let b: Vec<Ev> = load(&args.b, scenarios, &args.sim)?
        .stable_lines()
        .iter()
        .map(|l| split(l))
        .collect();
    let same = |x: &Ev, y: &Ev| x.what == y.what && x.time == y.time;
    let n = a.len().min(b.len());
    let first = (0..n)
        .find(|&i| !same(&a[i], &b[i]))
        .or((a.len() != b.len()).then_some(n));
    let Some(i) = first else {
        println!("no difference: the same {} events", a.len());
        return Ok(exit(true));
    };
    println!("A: {} ({} events)", args.a, a.len());
    println!("B: {} ({} events)", args.b, b.len());
    println!("\nfirst divergence at event {i}:");
    for e in &a[i.saturating_sub(args.context)..i] {
        println!("        {}", show(e));
    }
    let end = "(the trace ends here)".to_string();
    println!("  > A:  {}", a.get(i).map_or(end.clone(), show));
    println!("  > B:  {}", b.get(i).map_or(end, show));

    // Align what follows on events, ignoring times; then read the times of
    // aligned events as shifts.
    let wa: Vec<&str> = a[i..].iter().map(|e| e.what.as_str()).collect();
    let wb: Vec<&str> = b[i..].iter().map(|e| e.what.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let ops = similar::capture_diff_slices_deadline(Algorithm::Myers, &wa, &wb, Some(deadline));
    let (mut only_a, mut only_b, mut shifts) = (Vec::new(), Vec::new(), Vec::new());
    for op in ops {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for k in 0..len {
                    let (x, y) = (&a[i + old_index + k], &b[i + new_index + k]);
                    if x.time != y.time {
                        shifts.push((x.clone(), y.clone()));
                    }
                }
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => only_a.extend(a[i + old_index..i + old_index + old_len].iter().cloned()),
            DiffOp::Insert {
                new_index, new_len, ..
            } => only_b.extend(b[i + new_index..i + new_index + new_len].iter().cloned()),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                only_a.extend(a[i + old_index..i + old_index + old_len].iter().cloned());
                only_b.extend(b[i + new_index..i + new_index + new_len].iter().cloned());
            }
        }
    }
    // An event only in A and the same event only in B moved.
    let mut moved = Vec::new();
    let mut k = 0;
    while k < only_a.len() {
        match only_b.iter().position(|y| y.what == only_a[k].what) {
            Some(j) => moved.push((only_a.remove(k), only_b.remove(j))),
            None => k += 1,
        }
    }
    println!(
        "\nafter it: {} moved, {} only in A, {} only in B, {} timing shifts",
        moved.len(),
        only_a.len(),
        only_b.len(),
        shifts.len()
    );
    let more = |n: usize| {
        if n > args.max {
            println!("  … and {} more", n - args.max);
        }
    };
    for (x, y) in moved.iter().take(args.max) {
        println!(
            "  moved:    {} at {} in B ({} in A)",
            x.what, y.time, x.time
        );
    }
    more(moved.len());
    for x in only_a.iter().take(args.max) {
        println!("  only A:   {}", show(x));
    }
    more(only_a.len());
    for y in only_b.iter().take(args.max) {
        println!("  only B:   {}", show(y));
    }
    more(only_b.len());
    for (x, y) in shifts.iter().take(args.max) {
        println!("  shifted:  {} from {} to {}", x.what, x.time, y.time);
    }
    more(shifts.len());
    Ok(exit(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_into_time_and_what_whatever_the_widths() {
        let a = split("      0.120s  #3 worker-3       acquire mutex 'db'");
        let b = split("0.120s #3 worker-3 acquire mutex 'db'");
        assert_eq!(
            (a.time.as_str(), a.what.as_str()),
            ("0.120s", "#3 worker-3 acquire mutex 'db'")
        );
        assert_eq!((b.time, b.what), (a.time, a.what));
        let untimed = split("  deadlock: #1 waits");
        assert_eq!(
            (untimed.time.as_str(), untimed.what.as_str()),
            ("", "deadlock: #1 waits")
        );
    }
}
