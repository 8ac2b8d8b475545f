//! What a sweep found and how it is judged: the results `explore --json`
//! writes and `merge` reads, the verdict rules, and the table.
//!
//! - [`Expect::Pass`]: every seed passes, else `BROKEN`.
//! - [`Expect::Fails(kind)`](Expect::Fails): the first failing seed (in
//!   sweep order) fails with `kind`: `caught`; no failing seed is `MISSED`;
//!   a first failing seed of another kind is `WRONG KIND`. Later seeds
//!   failing with other kinds are listed under the table, not held against
//!   the variant (a buggy program may fail in more than one way).
//! - A failing seed whose traced rerun takes other decisions makes the
//!   variant `NON-DETERMINISTIC`.
//! - A shard judges only what it sees alone: a buggy variant with no
//!   failing seed in its part (or whose first fails another way) is
//!   undecided there and does not fail the shard; `merge` judges it.

use serde::{Deserialize, Serialize};

use super::Expect;
use crate::runtime::Seed;

/// One seed's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SeedResult {
    /// The seed, `0x…`.
    pub(crate) seed: Seed,
    /// Its failure kind (`panic`, …; `hung` or `crashed` under isolation),
    /// or `None` if it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    /// The failure's first line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) message: String,
    /// The decision hash.
    #[serde(default)]
    pub(crate) hash: u64,
}

/// One variant's sweep: one JSON line of `--json`, what `merge` reads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct VariantResult {
    pub(crate) lockstep: String,
    pub(crate) scenario: String,
    pub(crate) variant: String,
    /// `pass` or `fails:KIND`.
    pub(crate) expect: String,
    /// The sweep: seeds `start..end`.
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// `I/N`, when sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shard: Option<String>,
    pub(crate) policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) faults: Option<String>,
    /// Seeds run.
    pub(crate) tried: u64,
    /// Whether the variant was skipped (an earlier one misbehaved).
    #[serde(default)]
    pub(crate) skipped: bool,
    /// Failing seeds, in sweep order.
    pub(crate) failures: Vec<SeedResult>,
    /// Wall-clock seconds the sweep took.
    pub(crate) elapsed_secs: f64,
    /// Bundles written.
    #[serde(default)]
    pub(crate) bundles: Vec<String>,
    /// Failing seeds whose traced rerun (for the bundle) took other
    /// decisions than the sweep's run: non-determinism.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) nondeterministic: Vec<Seed>,
}

/// What a variant's sweep shows against what it declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every seed passed, as declared.
    Passed,
    /// The declared failure was found.
    Caught,
    /// A variant declared to pass failed.
    Broken,
    /// No seed showed the declared failure.
    Missed,
    /// The first failing seed failed another way.
    WrongKind,
    /// A failing seed did not replay: something outside the seed
    /// reached the run.
    NonDeterministic,
    /// A shard without the declared failure, or whose first failing seed
    /// failed another way: only the merge of every shard can judge it.
    Undecided,
    /// Not run.
    Skipped,
}

impl Verdict {
    pub(crate) fn ok(self) -> bool {
        matches!(self, Verdict::Passed | Verdict::Caught | Verdict::Undecided)
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "ok",
            Verdict::Caught => "ok: caught",
            Verdict::Broken => "BROKEN",
            Verdict::Missed => "MISSED",
            Verdict::WrongKind => "WRONG KIND",
            Verdict::Undecided => "ok so far: merge decides",
            Verdict::NonDeterministic => "NON-DETERMINISTIC",
            Verdict::Skipped => "skipped",
        }
    }
}

pub(crate) fn expect_label(e: Expect) -> String {
    match e {
        Expect::Fails(k) => format!("fails:{k}"),
        _ => "pass".to_string(),
    }
}

impl VariantResult {
    /// The verdict, from the declared expectation and the failures.
    pub(crate) fn verdict(&self) -> Verdict {
        if self.skipped {
            return Verdict::Skipped;
        }
        if !self.nondeterministic.is_empty() {
            return Verdict::NonDeterministic;
        }
        let verdict = match (self.expect.strip_prefix("fails:"), self.failures.first()) {
            (None, None) => Verdict::Passed,
            (None, Some(_)) => Verdict::Broken,
            (Some(_), None) => Verdict::Missed,
            (Some(want), Some(first)) if first.kind.as_deref() == Some(want) => Verdict::Caught,
            (Some(_), Some(_)) => Verdict::WrongKind,
        };
        match verdict {
            // The declared failure, or an earlier seed failing otherwise,
            // may be in another shard.
            Verdict::Missed | Verdict::WrongKind if self.shard.is_some() => Verdict::Undecided,
            v => v,
        }
    }
}

/// Prints the verdict table and the notes under it; returns whether every
/// variant behaved as declared.
pub(crate) fn print_table(results: &[VariantResult], out: &mut dyn std::io::Write) -> bool {
    let header = [
        "scenario",
        "variant",
        "expect",
        "seeds",
        "failures",
        "first failing",
        "seeds/s",
        "verdict",
    ];
    let rows: Vec<[String; 8]> = results
        .iter()
        .map(|r| {
            let rate = if r.elapsed_secs > 0.0 {
                format!("{:.0}", r.tried as f64 / r.elapsed_secs)
            } else {
                "-".to_string()
            };
            [
                r.scenario.clone(),
                r.variant.clone(),
                r.expect.clone(),
                r.tried.to_string(),
                r.failures.len().to_string(),
                r.failures
                    .first()
                    .map_or("-".to_string(), |f| f.seed.to_string()),
                rate,
                r.verdict().label().to_string(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            // Numbers right-aligned, text left-aligned.
            if (3..=6).contains(&i) {
                s.push_str(&format!("{c:>w$}  "));
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let mut all_ok = true;
    for r in results {
        let verdict = r.verdict();
        all_ok &= verdict.ok();
        let Some(first) = r.failures.first() else {
            continue;
        };
        let _ = writeln!(
            out,
            "\n{}/{}: first failing seed {} ({}): {}",
            r.scenario,
            r.variant,
            first.seed,
            first.kind.as_deref().unwrap_or("?"),
            first.message
        );
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for f in &r.failures {
            let k = f.kind.as_deref().unwrap_or("?");
            match kinds.iter_mut().find(|(kk, _)| *kk == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((k, 1)),
            }
        }
        if kinds.len() > 1 {
            let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            let _ = writeln!(out, "  failures by kind: {}", list.join(", "));
        }
        let shown: Vec<String> = r
            .failures
            .iter()
            .take(8)
            .map(|f| f.seed.to_string())
            .collect();
        let _ = writeln!(
            out,
            "  failing seeds: {}{}",
            shown.join(" "),
            if r.failures.len() > 8 { " …" } else { "" }
        );
        for seed in &r.nondeterministic {
            let _ = writeln!(
                out,
                "  seed {seed} does not replay: its traced rerun took other decisions (see its \
                 bundle)"
            );
        }
        for b in &r.bundles {
            let _ = writeln!(out, "  bundle: {b}  (lockstep replay {b})");
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        if all_ok {
            "every variant behaved as declared"
        } else {
            "some variants did not behave as declared"
        }
    );
    all_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(expect: &str, failures: &[(u64, &str)], shard: Option<&str>) -> VariantResult {
        VariantResult {
            lockstep: "0".into(),
            scenario: "s".into(),
            variant: "v".into(),
            expect: expect.into(),
            start: 0,
            end: 10,
            shard: shard.map(String::from),
            policy: "random".into(),
            faults: None,
            tried: 10,
            skipped: false,
            failures: failures
                .iter()
                .map(|&(seed, kind)| SeedResult {
                    seed: Seed(seed),
                    kind: Some(kind.into()),
                    message: String::new(),
                    hash: 0,
                })
                .collect(),
            elapsed_secs: 1.0,
            bundles: Vec::new(),
            nondeterministic: Vec::new(),
        }
    }

    #[test]
    fn the_first_failing_seed_decides_a_buggy_variant() {
        use Verdict::*;
        assert_eq!(result("pass", &[], None).verdict(), Passed);
        assert_eq!(result("pass", &[(3, "panic")], None).verdict(), Broken);
        assert_eq!(result("fails:panic", &[], None).verdict(), Missed);
        let other_later = [(2, "panic"), (5, "deadlock")];
        assert_eq!(result("fails:panic", &other_later, None).verdict(), Caught);
        let other_first = [(2, "deadlock"), (5, "panic")];
        assert_eq!(
            result("fails:panic", &other_first, None).verdict(),
            WrongKind
        );
        // A shard cannot tell a missed bug from one in another shard.
        assert_eq!(result("fails:panic", &[], Some("2/4")).verdict(), Undecided);
        assert!(Undecided.ok());
        assert_eq!(
            result("pass", &[(3, "panic")], Some("2/4")).verdict(),
            Broken
        );
        let mut nd = result("fails:panic", &[(2, "panic")], None);
        nd.nondeterministic.push(Seed(2));
        assert_eq!(nd.verdict(), NonDeterministic);
        let mut table = Vec::new();
        assert!(!print_table(
            &[result("fails:panic", &other_first, None)],
            &mut table
        ));
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("failures by kind: deadlock ×1, panic ×1"),
            "{table}"
        );
    }
}
