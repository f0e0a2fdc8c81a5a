//! `.dockerignore`: which paths of a build context the builder leaves out.
//! Patterns as docker's: one per line, `#` lines are comments, surrounding
//! blanks trimmed, `!` re-includes, paths cleaned and relative to the
//! context root, `*` and `?` within one path element, `**` across any
//! number of them; a pattern that matches a directory matches everything
//! under it, and the last matching pattern decides.

/// The parsed patterns of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let parts: Vec<String> = pattern
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .map(str::to_string)
                .collect();
            if !parts.is_empty() {
                patterns.push((negated, parts));
            }
        }
        Ignore { patterns }
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left out.
    pub fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut excluded = false;
        for (negated, pattern) in &self.patterns {
            // The path itself or one of its parent directories.
            let hit = (1..=parts.len()).any(|n| matches(pattern, &parts[..n]));
            if hit {
                excluded = !negated;
            }
        }
        excluded
    }
}

/// Matches path elements against pattern elements (`**` spans elements).
fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|skip| matches(rest, &path[skip..])),
        Some((p, rest)) => match path.split_first() {
            Some((first, tail)) => {
                let chars = |t: &str| t.chars().collect::<Vec<char>>();
                glob(&chars(p), &chars(first)) && matches(rest, tail)
            }
            None => false,
        },
    }
}

/// One path element (or, for `${VAR#pattern}`, a shell word) against a
/// glob: `*`, `?`, `[...]` classes (`^` or `!` negates, `a-z` ranges) and
/// `\` escapes, by characters as Go's filepath.Match; a `[` without its
/// `]` matches nothing.
pub(crate) fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some(('[', rest)) => {
            let Some(close) = rest.iter().position(|&c| c == ']') else {
                return false;
            };
            let Some((&c, tail)) = s.split_first() else {
                return false;
            };
            let (negate, class) = match rest[..close].split_first() {
                Some(('^' | '!', class)) => (true, class),
                _ => (false, &rest[..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && glob(&rest[close + 1..], tail)
        }
        Some(('\\', rest)) if !rest.is_empty() => {
            s.first() == Some(&rest[0]) && glob(&rest[1..], &s[1..])
        }
        Some((&c, rest)) => s.first() == Some(&c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_py_dockerignore_case() {
        let i = Ignore::parse(
            "ignored\nDockerfile\n.dockerignore\n ignored-with-spaces \n!ignored/subdir/excepted-file\n! ignored/subdir/excepted-with-spaces  \n\n#*\n",
        );
        for (path, out) in [
            ("ignored/subdir/file", true),
            ("ignored/subdir/excepted-file", false),
            ("ignored/subdir/excepted-with-spaces", false),
            ("ignored-with-spaces", true),
            ("#file.txt", false),
            ("not-ignored", false),
            ("Dockerfile", true),
        ] {
            assert_eq!(i.excludes(path), out, "{path}");
        }
    }

    #[test]
    fn globs() {
        let i = Ignore::parse("**/*.log\n*.tmp\na?c\n[x-z]1\n!keep.log\n");
        assert!(i.excludes("d/e/f.log"));
        assert!(i.excludes("f.log"));
        assert!(!i.excludes("keep.log"));
        assert!(i.excludes("x.tmp"));
        assert!(!i.excludes("d/x.tmp"));
        assert!(i.excludes("abc") && !i.excludes("abbc"));
        assert!(i.excludes("y1") && !i.excludes("a1"));
    }
}
