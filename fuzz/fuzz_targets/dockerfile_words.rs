//! Dockerfile words with variables set (the `dockerfile` target has none):
//! the input's first line is a variable's value, the rest the words.
//! `${V#pattern}`, `${V%%pattern}`, `${V:-x}`... expand, with both escape
//! characters, to words or an error, never a panic, and quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (value, text) = input.split_once('\n').unwrap_or((input, ""));
    let vars = |name: &str| match name {
        "V" => Some(value.to_string()),
        "EMPTY" => Some(String::new()),
        "PATH" => Some("/usr/local/bin:/usr/bin:/bin".to_string()),
        _ => None,
    };
    for escape in ['\\', '`'] {
        let _ = berth_build::expand(text, escape, &vars);
        let _ = berth_build::words(text, escape, &vars);
    }
});
