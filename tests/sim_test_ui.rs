//! Bad `#[sim_test]` input is a compile error that says what is accepted.
//! The expected messages are the `.stderr` files beside each case in
//! `tests/ui/`; refresh them with `TRYBUILD=overwrite` after reviewing.

#[test]
fn attribute_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
