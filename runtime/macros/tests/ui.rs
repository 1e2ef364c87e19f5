//! The attributes as the compiler sees them: valid uses compile unchanged, invalid ones
//! fail with the grammar's message at the offending token.

#[test]
fn attributes() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/valid.rs");
    cases.compile_fail("tests/ui/unknown_option.rs");
    cases.compile_fail("tests/ui/bad_values.rs");
    cases.compile_fail("tests/ui/wrong_item.rs");
    cases.compile_fail("tests/ui/rules.rs");
}
