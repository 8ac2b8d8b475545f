//! Whether a task's output is a `Result::Err`, for any output type.
//!
//! `spawn` accepts any output type, and a generic function cannot ask "is
//! this a `Result`, and an `Err`?" on stable Rust (that would take
//! specialization). Adding a trait bound to `spawn` would break every call
//! site whose output type does not implement it. So the check is made at
//! run time, without `unsafe`, in two steps:
//!
//! 1. the output type is a `Result`: its [`type_name`](std::any::type_name)
//!    starts with `core::result::Result<` (this covers `io::Result`,
//!    `anyhow::Result` and every alias);
//! 2. the value is its `Err` variant: `Result` has no `repr`, so by the
//!    language's rules its variants' discriminants are `Ok = 0`, `Err = 1`,
//!    and [`std::mem::discriminant`] of the value, fed to a hasher that
//!    keeps the integer it is given, yields that number.
//!
//! Neither the exact text of `type_name` nor the way a `Discriminant` hashes
//! is a documented guarantee, so both are checked once against known values
//! (`probe`); should a toolchain ever change them, the check turns itself
//! off (no task `Err` is then reported) rather than guess.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// Whether `value` is the `Err` variant of a `Result`.
#[inline]
pub(crate) fn is_err<T>(value: &T) -> bool {
    is_result::<T>() && works() && discriminant(value) == Some(1)
}

/// The output type's name without `core::result::` noise, for reports.
pub(crate) fn type_label<T>() -> String {
    std::any::type_name::<T>()
        .replace("core::result::", "")
        .replace("alloc::string::", "")
        .replace("alloc::boxed::", "")
}

fn is_result<T>() -> bool {
    let name = std::any::type_name::<T>();
    name.starts_with("core::result::Result<") || name.starts_with("std::result::Result<")
}

fn works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(probe)
}

fn probe() -> bool {
    is_result::<Result<(), String>>()
        && is_result::<std::io::Result<u8>>()
        && !is_result::<Option<()>>()
        && discriminant(&Ok::<(), ()>(())) == Some(0)
        && discriminant(&Err::<(), ()>(())) == Some(1)
        && discriminant(&Ok::<&u8, ()>(&0)) == Some(0)
        && discriminant(&Err::<Box<u8>, String>(String::new())) == Some(1)
}

/// The discriminant of an enum value, as the integer its `Discriminant`
/// hashes.
fn discriminant<T>(value: &T) -> Option<u128> {
    let mut keep = Keep::default();
    std::mem::discriminant(value).hash(&mut keep);
    keep.value.filter(|_| keep.writes == 1)
}

#[derive(Default)]
struct Keep {
    value: Option<u128>,
    writes: u32,
}

impl Hasher for Keep {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.writes += 1;
        if bytes.len() <= 16 {
            let mut word = [0u8; 16];
            if cfg!(target_endian = "little") {
                word[..bytes.len()].copy_from_slice(bytes);
                self.value = Some(u128::from_le_bytes(word));
            } else {
                word[16 - bytes.len()..].copy_from_slice(bytes);
                self.value = Some(u128::from_be_bytes(word));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_told_apart_from_everything_else() {
        assert!(works());
        assert!(is_err(&Err::<(), _>("boom")));
        assert!(!is_err(&Ok::<(), &str>(())));
        assert!(is_err(&std::io::Result::<()>::Err(std::io::Error::other(
            "x"
        ))));
        assert!(!is_err(&Some(1u8)));
        assert!(!is_err(&1u64));
        assert!(!is_err(&()));
        #[allow(dead_code)]
        enum Mine {
            A,
            B,
        }
        assert!(!is_err(&Mine::B));
        assert_eq!(type_label::<Result<(), String>>(), "Result<(), String>");
    }
}
