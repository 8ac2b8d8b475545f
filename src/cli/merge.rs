//! `lockstep merge FILE…`: one verdict table from the `--json` outputs of
//! `explore` shards.
//!
//! Results of one variant over one sweep (same seeds, policy and fault
//! plan) are merged when they come from the shards `1/N … N/N` of it, each
//! exactly once; a missing or repeated shard is an input error (exit 2),
//! since a verdict over part of a sweep would claim more than was run. The
//! merged failing seeds are the union, in sweep order, so the first failing
//! seed is the one a single machine would have found. seeds/s is the
//! fleet's: seeds over the slowest shard's time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::verdict::{VariantResult, print_table};
use super::{Outcome, exit};

/// `lockstep merge`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// `explore --json` outputs (one JSON line per variant).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print the merged results as JSON lines too.
    #[arg(long)]
    json: bool,
}

type Key = (String, String, u64, u64, String, Option<String>);

pub(crate) fn run(args: Args) -> Outcome {
    let mut groups: BTreeMap<Key, Vec<VariantResult>> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for file in &args.files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r: VariantResult = serde_json::from_str(line).map_err(|e| {
                format!(
                    "{} line {}: not an `explore --json` result: {e}",
                    file.display(),
                    n + 1
                )
            })?;
            let key = (
                r.scenario.clone(),
                r.variant.clone(),
                r.start,
                r.end,
                r.policy.clone(),
                r.faults.clone(),
            );
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(r);
        }
    }
    if groups.is_empty() {
        return Err("nothing to merge: the files hold no results".to_string());
    }
    let mut merged = Vec::new();
    for key in order {
        let parts = groups.remove(&key).unwrap_or_default();
        merged.push(merge_one(parts)?);
    }
    if args.json {
        for r in &merged {
            println!("{}", serde_json::to_string(r).map_err(|e| e.to_string())?);
        }
    }
    let ok = if args.json {
        print_table(&merged, &mut std::io::stderr())
    } else {
        print_table(&merged, &mut std::io::stdout())
    };
    Ok(exit(ok))
}

fn merge_one(mut parts: Vec<VariantResult>) -> Result<VariantResult, String> {
    let name = format!(
        "{}/{} (seeds {}..{})",
        parts[0].scenario, parts[0].variant, parts[0].start, parts[0].end
    );
    let shard = |r: &VariantResult| -> Result<Option<(u64, u64)>, String> {
        r.shard
            .as_deref()
            .map(|s| {
                let (i, n) = s.split_once('/').ok_or(())?;
                Ok((i.parse().map_err(|_| ())?, n.parse().map_err(|_| ())?))
            })
            .transpose()
            .map_err(|()| format!("{name}: a result has a bad shard `{:?}`", r.shard))
    };
    if parts.len() == 1 && parts[0].shard.is_none() {
        return Ok(parts.remove(0));
    }
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut count = None;
    for p in &parts {
        let Some((i, n)) = shard(p)? else {
            return Err(format!(
                "{name}: an unsharded result cannot be merged with other results of the same sweep"
            ));
        };
        if count.is_some_and(|c| c != n) {
            return Err(format!(
                "{name}: results from sweeps cut into different shard counts"
            ));
        }
        count = Some(n);
        *seen.entry(i).or_default() += 1;
    }
    let n = count.unwrap_or(0);
    if let Some((i, _)) = seen.iter().find(|(_, c)| **c > 1) {
        return Err(format!("{name}: shard {i}/{n} appears more than once"));
    }
    if let Some(i) = (1..=n).find(|i| !seen.contains_key(i)) {
        return Err(format!(
            "{name}: shard {i}/{n} is missing (give every shard's --json output)"
        ));
    }
    let mut out = parts[0].clone();
    out.shard = None;
    out.tried = parts.iter().map(|p| p.tried).sum();
    out.skipped = parts.iter().all(|p| p.skipped);
    out.elapsed_secs = parts.iter().map(|p| p.elapsed_secs).fold(0.0, f64::max);
    out.failures = parts.iter().flat_map(|p| p.failures.clone()).collect();
    out.failures
        .sort_by_key(|f| f.seed.get().wrapping_sub(out.start));
    out.bundles = parts.iter().flat_map(|p| p.bundles.clone()).collect();
    out.nondeterministic = parts
        .iter()
        .flat_map(|p| p.nondeterministic.clone())
        .collect();
    Ok(out)
}
