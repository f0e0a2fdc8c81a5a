//! docker's `filters` query parameter (both JSON shapes): parsing and the
//! filter tests never panic, and what a parsed filter set prints parses back
//! to the same set.
#![no_main]

use berth_api::Filters;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let Ok(f) = Filters::parse(input) else {
        return;
    };
    let _ = f.validate(&["label", "label!", "dangling", "until"]);
    let _ = f.bool("dangling");
    let labels = [("app", "web"), ("tier", ""), ("a=b", "c")];
    let _ = f.labels_match("label", || labels.iter().copied());
    let _ = f.prune_labels_match(|| labels.iter().copied());
    let printed = f.to_json();
    let again = Filters::parse(&printed)
        .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, f, "{input:?} printed as {printed:?}");
});
