//! A build context's `.dockerignore` (all lines but the last) and a path of
//! the context (the last line): deciding whether the path is left out
//! never panics and ends quickly, whatever `*`, `**`, `?`, `[...]` and `\`
//! the patterns hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (patterns, path) = input.rsplit_once('\n').unwrap_or(("", input));
    let ignore = berth_build::Ignore::parse(patterns);
    let _ = ignore.excludes(path);
});
