//! Lexical normalisation of tar entry paths.
//!
//! A tar path is normalised the way docker and containerd do (Go's
//! `filepath.Clean` of the path joined to `/`): empty and `.` components are
//! dropped, a leading `/` is ignored (absolute entry names are relative to
//! the layer root), and `..` removes the previous component. A `..` that would
//! climb above the root is refused rather than clamped, because no honest
//! layer writer produces one. The normalised path is later resolved by the
//! kernel with `RESOLVE_IN_ROOT`, which is what actually confines symlinks;
//! this step only gives every entry a canonical name so that the layer rules
//! (replace, merge, whiteout) compare like with like.

/// Linux's PATH_MAX: longer paths cannot be passed to a system call anyway.
pub(crate) const MAX_PATH: usize = 4096;
/// How deep an entry may sit. Bounds the recursion (and open directory
/// descriptors) of the recursive removal in [`crate::apply`].
pub(crate) const MAX_DEPTH: usize = 512;

/// Normalises `raw` into components joined by `/`, without a leading or
/// trailing slash. The empty result is the layer root itself.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    if raw.contains(&0) {
        return Err("it contains a NUL byte");
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err("it climbs above the layer root with '..'");
                }
            }
            c => parts.push(c),
        }
    }
    if parts.len() > MAX_DEPTH {
        return Err("it is nested more than 512 directories deep");
    }
    let out = parts.join(&b'/');
    if out.len() > MAX_PATH {
        return Err("it is longer than 4096 bytes");
    }
    Ok(out)
}

/// Splits a normalised, non-empty path into its parent (possibly empty, the
/// root) and its last component.
pub(crate) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// True if `ancestor` is `path` or one of its parent directories (the root,
/// the empty path, is everyone's ancestor).
pub(crate) fn is_ancestor_or_self(ancestor: &[u8], path: &[u8]) -> bool {
    ancestor.is_empty()
        || (path.starts_with(ancestor)
            && (path.len() == ancestor.len() || path[ancestor.len()] == b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, &'static str> {
        normalize(s.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn normalises_like_filepath_clean() {
        assert_eq!(n("./etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(n("/etc//passwd/").unwrap(), "etc/passwd");
        assert_eq!(n("a/./b/../c").unwrap(), "a/c");
        assert_eq!(n("./").unwrap(), "");
        assert_eq!(n("/").unwrap(), "");
        assert_eq!(n("a/..").unwrap(), "");
    }

    #[test]
    fn refuses_escapes_and_nul() {
        assert!(n("../etc/passwd").is_err());
        assert!(n("a/../../b").is_err());
        assert!(n("/../x").is_err());
        assert!(normalize(b"a\0b").is_err());
        assert!(n(&"a/".repeat(600)).is_err());
        assert!(n(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn split_and_ancestry() {
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
        assert!(is_ancestor_or_self(b"a", b"a/b"));
        assert!(is_ancestor_or_self(b"a/b", b"a/b"));
        assert!(is_ancestor_or_self(b"", b"a"));
        assert!(!is_ancestor_or_self(b"a", b"ab/c"));
        assert!(!is_ancestor_or_self(b"a/b", b"a"));
    }
}
