//! Parsing of `WWW-Authenticate` challenges (RFC 7235) as registries send them.
//!
//! A registry answers an unauthenticated request with 401 and either
//! `Basic realm="..."` or `Bearer realm="...",service="...",scope="..."`.
//! The parser is lenient about spacing and quoting because real registries
//! differ, but it never guesses a realm: a challenge without one is ignored.

/// What a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send the username and password with every request.
    Basic,
    /// Fetch a token from `realm` for `service` and the needed scope.
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry said this request needs, if it said one.
        scope: Option<String>,
    },
}

/// Parses every challenge in one header value, in order. Unknown schemes are skipped.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = split_token(rest);
        if scheme.is_empty() {
            break;
        }
        let (params, after) = parse_params(after);
        rest = after;
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                let get = |k: &str| {
                    params
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                if let Some(realm) = get("realm").filter(|r| !r.is_empty()) {
                    out.push(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Splits a leading token (scheme or parameter name) off `s`.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', ',', '\t']);
    let end = s.find([' ', '=', ',', '\t']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Reads `name=value` pairs until the next scheme starts; returns them and the rest.
fn parse_params(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut params = Vec::new();
    loop {
        let trimmed = s.trim_start_matches([' ', ',', '\t']);
        let (name, after) = split_token(trimmed);
        let after_ws = after.trim_start();
        if name.is_empty() || !after_ws.starts_with('=') {
            // Not a parameter: either the end or the next challenge's scheme.
            return (params, trimmed);
        }
        let value_start = after_ws[1..].trim_start();
        let (value, rest) = if let Some(quoted) = value_start.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = value_start.find([',', ' ']).unwrap_or(value_start.len());
            (value_start[..end].to_string(), &value_start[end..])
        };
        params.push((name.to_string(), value));
        s = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_all_params() {
        let got = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            got,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
    }

    #[test]
    fn basic_and_spacing_and_unquoted() {
        assert_eq!(
            parse(r#"Basic realm="basic-realm""#),
            vec![Challenge::Basic]
        );
        assert_eq!(
            parse("bearer realm=http://127.0.0.1:1/token , service=svc"),
            vec![Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("svc".into()),
                scope: None
            }]
        );
    }

    #[test]
    fn several_challenges_and_escapes() {
        let got = parse(r#"Negotiate, Basic realm="a\"b", Bearer realm="r""#);
        assert_eq!(
            got,
            vec![
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "r".into(),
                    service: None,
                    scope: None
                }
            ]
        );
    }

    #[test]
    fn bearer_without_realm_is_ignored() {
        assert!(parse(r#"Bearer service="x""#).is_empty());
        assert!(parse("").is_empty());
    }
}
