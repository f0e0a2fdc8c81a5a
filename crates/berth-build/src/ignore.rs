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
    let chars = |t: &str| t.chars().collect::<Vec<char>>();
    wildcard(
        pattern,
        path,
        |p| p == "**",
        |p, element| glob(&chars(p), &chars(element)),
        |_| true,
    )
}

/// Whether `text` matches `pattern`, whose items are either a star (any
/// run of text items that `star_takes`) or match one text item (`one`).
///
/// Globs (`*` over characters) and `**` (over path elements) both come down
/// to this. Without recursion, in at most `len(text)` passes of at most
/// `min(len(pattern), len(text))` steps: on a mismatch only the last star
/// seen takes one more item, since an earlier star taking more could only
/// hand the rest of the pattern a suffix the last one offered already. A
/// matcher that tried every split for every star took minutes on 13 `*`
/// against a 19-character name.
pub fn wildcard<P, T>(
    pattern: &[P],
    text: &[T],
    is_star: impl Fn(&P) -> bool,
    one: impl Fn(&P, &T) -> bool,
    star_takes: impl Fn(&T) -> bool,
) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // The pattern after the last star, and where in `text` that star stops.
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match pattern.get(pi) {
            Some(p) if is_star(p) => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(p) if one(p, &text[ti]) => (pi, ti) = (pi + 1, ti + 1),
            _ => match star {
                Some((after, stop)) if star_takes(&text[stop]) => {
                    star = Some((after, stop + 1));
                    (pi, ti) = (after, stop + 1);
                }
                _ => return false,
            },
        }
    }
    pattern[pi..].iter().all(is_star)
}

/// One item of a glob.
enum Item<'a> {
    Star,
    Any,
    /// `[...]`'s inside, and whether it was negated.
    Class(bool, &'a [char]),
    Char(char),
}

impl Item<'_> {
    fn matches(&self, c: char) -> bool {
        match *self {
            Item::Star | Item::Any => true,
            Item::Char(x) => x == c,
            Item::Class(negate, class) => {
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
                hit != negate
            }
        }
    }
}

/// One path element (or, for `${VAR#pattern}`, a shell word) against a
/// glob: `*`, `?`, `[...]` classes (`^` or `!` negates, `a-z` ranges) and
/// `\` escapes, by characters as Go's filepath.Match; a `[` without its
/// `]` matches nothing.
pub(crate) fn glob(p: &[char], s: &[char]) -> bool {
    let mut items = Vec::with_capacity(p.len());
    let mut rest = p;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        items.push(match c {
            '*' => Item::Star,
            '?' => Item::Any,
            '[' => {
                let Some(close) = tail.iter().position(|&c| c == ']') else {
                    return false;
                };
                rest = &tail[close + 1..];
                match tail[..close].split_first() {
                    Some(('^' | '!', class)) => Item::Class(true, class),
                    _ => Item::Class(false, &tail[..close]),
                }
            }
            '\\' if !tail.is_empty() => {
                rest = &tail[1..];
                Item::Char(tail[0])
            }
            c => Item::Char(c),
        });
    }
    wildcard(
        &items,
        s,
        |i| matches!(i, Item::Star),
        |i, c| i.matches(*c),
        |_| true,
    )
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

    #[test]
    fn many_stars_take_linear_passes() {
        // The dockerignore fuzz target's hang (tmin'd, then made readable):
        // 13 `*` against a 19-character name tried every split of it for
        // each star, for seconds per path; `**` did the same over elements.
        let started = std::time::Instant::now();
        let i = Ignore::parse(&format!("{}\u{10}\0", "*".repeat(13)));
        assert!(!i.excludes("****\u{1}\0\u{11}\0m]*\0\0\0p\t\0"));
        let i = Ignore::parse(&format!("{}b", "*a".repeat(40)));
        assert!(!i.excludes(&"a".repeat(255)));
        let i = Ignore::parse(&format!("{}x", "**/a/".repeat(30)));
        assert!(!i.excludes(&"a/".repeat(100)));
        assert!(i.excludes(&format!("{}x", "a/".repeat(40))));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn globs_answer_as_the_recursive_definition() {
        fn reference(p: &[char], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
                Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
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
                    Item::Class(negate, class).matches(c) && reference(&rest[close + 1..], tail)
                }
                Some(('\\', rest)) if !rest.is_empty() => {
                    s.first() == Some(&rest[0]) && reference(&rest[1..], &s[1..])
                }
                Some((&c, rest)) => s.first() == Some(&c) && reference(rest, &s[1..]),
            }
        }
        fn all(alphabet: &str, max: usize) -> Vec<Vec<char>> {
            let mut out = vec![Vec::new()];
            let mut last: Vec<Vec<char>> = vec![Vec::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w| alphabet.chars().map(move |c| [&w[..], &[c]].concat()))
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        for p in all("a*?[]!\\-", 4) {
            for s in all("a!]-\\", 3) {
                assert_eq!(glob(&p, &s), reference(&p, &s), "{p:?} {s:?}");
            }
        }
    }
}
