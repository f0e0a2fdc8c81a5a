//! Container names: validation by docker's rule and generated names in
//! docker's `adjective_surname` shape (our own word lists).

use std::io::Read;

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "ample", "bold", "brave", "bright", "brisk", "calm", "candid", "clever",
    "cosmic", "crisp", "daring", "deft", "eager", "earnest", "fair", "fearless", "fluent",
    "gentle", "glad", "golden", "grand", "happy", "hardy", "humble", "jolly", "keen", "kind",
    "lively", "loyal", "lucid", "merry", "mighty", "modest", "nimble", "noble", "patient",
    "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "serene", "sharp", "silent",
    "smart", "steady", "sturdy", "swift", "tidy", "true", "vivid", "warm", "wise", "witty",
    "zealous", "zesty",
];

/// Scientists, engineers and mathematicians.
const SURNAMES: &[&str] = &[
    "agnesi",
    "allen",
    "babbage",
    "backus",
    "bardeen",
    "bell",
    "boole",
    "borg",
    "cerf",
    "church",
    "clarke",
    "codd",
    "conway",
    "curie",
    "dijkstra",
    "easley",
    "euler",
    "faraday",
    "fermi",
    "feynman",
    "franklin",
    "gauss",
    "goldberg",
    "hamilton",
    "hopper",
    "hypatia",
    "jackson",
    "johnson",
    "kahan",
    "kay",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "lovelace",
    "maxwell",
    "mcclintock",
    "meitner",
    "milner",
    "minsky",
    "neumann",
    "noether",
    "pascal",
    "perlman",
    "ritchie",
    "shannon",
    "sinoussi",
    "somerville",
    "stallman",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wilkes",
    "wing",
    "wirth",
    "wozniak",
    "yalow",
    "yonath",
    "zuse",
];

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, one leading `/` allowed.
pub fn validate(name: &str) -> Result<String, String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok =
        bare.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && bare.len() <= 253 {
        Ok(bare.to_string())
    } else {
        Err(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

/// A random `adjective_surname`; after `attempt` 0 a digit is appended,
/// as docker does when it retries after a collision.
pub fn generate(attempt: u32) -> String {
    let r = random_u64();
    let adjective = ADJECTIVES[(r % ADJECTIVES.len() as u64) as usize];
    let surname = SURNAMES[((r >> 20) % SURNAMES.len() as u64) as usize];
    if attempt == 0 {
        format!("{adjective}_{surname}")
    } else {
        format!("{adjective}_{surname}{}", (r >> 40) % 10)
    }
}

/// A new container id: 64 hex digits from the kernel's random source.
pub fn new_id() -> String {
    let mut raw = [0u8; 32];
    fill_random(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_u64() -> u64 {
    let mut raw = [0u8; 8];
    fill_random(&mut raw);
    u64::from_le_bytes(raw)
}

fn fill_random(buf: &mut [u8]) {
    // /dev/urandom never blocks after boot and never fails short on a
    // healthy system; a failure here is a broken host, so say so.
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("reading /dev/urandom");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(validate("/web-1").unwrap(), "web-1");
        assert_eq!(validate("a.b_c").unwrap(), "a.b_c");
        for bad in ["", "a", "-x", "_x", "a b", "a/b", "ü1"] {
            let e = validate(bad).unwrap_err();
            assert!(e.contains("Invalid container name"), "{bad}: {e}");
        }
    }

    #[test]
    fn generated_names_and_ids_are_valid() {
        for attempt in 0..20 {
            let n = generate(attempt);
            assert!(validate(&n).is_ok(), "{n}");
            assert!(n.contains('_'));
        }
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_id(), id);
    }
}
