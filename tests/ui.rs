//! Compile-time rejections of `#[derive(SseEvent)]` and of the typed API, and the forms that
//! must compile. The `.stderr` snapshots depend on the compiler version: re-bless them with
//! `TRYBUILD=overwrite cargo test -p statelesse-tests --test ui` and review the diff.

#[rustversion::attr(not(stable(1.95)), ignore = "ui snapshots blessed on rustc 1.95")]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
