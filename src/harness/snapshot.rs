//! Trace snapshots: `assert_trace_snapshot!` stores a trace with `insta`
//! under the workspace's `snapshots/` directory.
//!
//! The trace is rendered with [`RenderOptions::stable`]: spawn sites and
//! panic locations keep their file but lose their line numbers, so moving
//! code does not churn snapshots, while any change in what the program does
//! (an event more, a task woken in another order, a different virtual time)
//! shows up as a one-line-per-event diff. With `CI=true`, insta fails on a
//! changed snapshot instead of writing a new one.

use std::path::{Path, PathBuf};

use crate::runtime::Outcome;
use crate::trace::{RenderOptions, Trace};

/// Something that has a trace: an [`Outcome`] or a [`Trace`].
pub trait AsTrace {
    /// The trace.
    fn as_trace(&self) -> &Trace;
}

impl<T> AsTrace for Outcome<T> {
    fn as_trace(&self) -> &Trace {
        self.trace()
    }
}

impl AsTrace for Trace {
    fn as_trace(&self) -> &Trace {
        self
    }
}

impl<T: AsTrace + ?Sized> AsTrace for &T {
    fn as_trace(&self) -> &Trace {
        (**self).as_trace()
    }
}

/// The text a trace snapshot stores.
pub fn stable_trace<T: AsTrace + ?Sized>(t: &T) -> String {
    t.as_trace().render_with(&RenderOptions::stable())
}

/// `<workspace root>/snapshots`: the outermost directory above
/// `manifest_dir` whose `Cargo.toml` declares a `[workspace]`, or the
/// package itself when it is not in a workspace.
pub fn snapshot_dir(manifest_dir: &str) -> PathBuf {
    let manifest = Path::new(manifest_dir);
    let root = manifest
        .ancestors()
        .filter(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|l| l.trim() == "[workspace]"))
        })
        .last()
        .unwrap_or(manifest);
    root.join("snapshots")
}

/// Asserts that a run's trace matches its stored snapshot.
///
/// `assert_trace_snapshot!(outcome)` names the snapshot after the test
/// function; `assert_trace_snapshot!("name", outcome)` names it explicitly.
/// Either argument may be an [`Outcome`](crate::Outcome) or a
/// [`Trace`](crate::trace::Trace). Snapshots live in `snapshots/` at the
/// workspace root, as `<module>__<name>.snap`; review changes with
/// `cargo insta review`.
///
/// ```no_run
/// use lockstep::prelude::*;
///
/// #[test]
/// fn two_workers() {
///     let outcome = Sim::new(0x1).run(async {
///         let a = spawn(async { sleep(Duration::from_millis(10)).await });
///         a.await.unwrap();
///     });
///     lockstep::assert_trace_snapshot!(outcome);
/// }
/// ```
#[macro_export]
macro_rules! assert_trace_snapshot {
    ($outcome:expr $(,)?) => {
        $crate::__private::insta::with_settings!(
            {
                snapshot_path => $crate::__private::snapshot_dir(::core::env!("CARGO_MANIFEST_DIR")),
                omit_expression => true,
            },
            { $crate::__private::insta::assert_snapshot!($crate::__private::stable_trace(&$outcome)) }
        )
    };
    ($name:expr, $outcome:expr $(,)?) => {
        $crate::__private::insta::with_settings!(
            {
                snapshot_path => $crate::__private::snapshot_dir(::core::env!("CARGO_MANIFEST_DIR")),
                omit_expression => true,
            },
            { $crate::__private::insta::assert_snapshot!($name, $crate::__private::stable_trace(&$outcome)) }
        )
    };
}
