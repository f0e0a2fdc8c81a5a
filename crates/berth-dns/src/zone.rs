//! One network's name table: names to addresses (rotated per query) and
//! addresses back to names. Built once per reload, read by every query.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::rr::Name;

use crate::config::NetworkDns;

/// The longest name DNS can carry (RFC 1035), without the trailing dot.
const MAX_NAME: usize = 253;

/// The names of one network.
#[derive(Debug, Default)]
pub struct Zone {
    names: HashMap<String, Entry>,
    /// `4.3.2.1.in-addr.arpa` (lowercase, no trailing dot) -> the owner's name.
    reverse: HashMap<String, Name>,
    /// An endpoint's address -> the short ids among its record's names.
    ids_by_addr: HashMap<IpAddr, Vec<String>>,
    /// Every short id on the network: the containers on it.
    ids: HashSet<String>,
    /// An endpoint's address -> its links (alias key -> target key).
    links_by_addr: HashMap<IpAddr, HashMap<String, String>>,
}

/// The addresses behind one name: one container's, or every container
/// that shares an alias.
#[derive(Debug, Default)]
struct Entry {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    next_v4: AtomicUsize,
    next_v6: AtomicUsize,
}

/// The lookup key of a name: lowercase, without the trailing dot.
pub fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Whether `name` (a key) is a container's 12-character short id, which
/// berthd puts among each record's names: the same container's records
/// on two networks share it.
fn is_short_id(name: &str) -> bool {
    name.len() == 12
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a container name or alias may be to be served: a DNS name of
/// letters, digits, '-', '_' and '.', without empty labels.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Zone {
    /// The table of `net`'s records. Names that cannot be DNS names are
    /// skipped with a warning (they could never be asked for).
    pub fn build(net: &NetworkDns) -> Zone {
        let mut zone = Zone::default();
        let suffix = key(&net.network_name);
        for rec in &net.records {
            let mut owner = None;
            for name in &rec.names {
                let name = key(name);
                if !valid_name(&name) {
                    tracing::warn!(network = %net.network_name, name, "not a DNS name; skipped");
                    continue;
                }
                let mut forms = vec![name.clone()];
                if valid_name(&suffix) && name.len() + 1 + suffix.len() <= MAX_NAME {
                    forms.push(format!("{name}.{suffix}"));
                }
                if owner.is_none() {
                    // PTR answers name the first name qualified with the
                    // network's, as docker's do (`web.front.`).
                    owner = forms
                        .last()
                        .and_then(|f| Name::from_ascii(format!("{f}.")).ok());
                }
                for form in forms {
                    let e = zone.names.entry(form).or_default();
                    for a in &rec.ipv4 {
                        if !e.v4.contains(a) {
                            e.v4.push(*a);
                        }
                    }
                    for a in &rec.ipv6 {
                        if !e.v6.contains(a) {
                            e.v6.push(*a);
                        }
                    }
                }
            }
            let links: HashMap<String, String> = rec
                .links
                .iter()
                .map(|(alias, target)| (key(alias), key(target)))
                .filter(|(alias, target)| valid_name(alias) && valid_name(target))
                .collect();
            if !links.is_empty() {
                let addrs = rec.ipv4.iter().map(|a| IpAddr::V4(*a));
                for addr in addrs.chain(rec.ipv6.iter().map(|a| IpAddr::V6(*a))) {
                    zone.links_by_addr.insert(addr, links.clone());
                }
            }
            let Some(owner) = owner else { continue };
            let ids: Vec<String> = rec
                .names
                .iter()
                .map(|n| key(n))
                .filter(|n| is_short_id(n))
                .collect();
            zone.ids.extend(ids.iter().cloned());
            let addrs = rec.ipv4.iter().map(|a| IpAddr::V4(*a));
            for addr in addrs.chain(rec.ipv6.iter().map(|a| IpAddr::V6(*a))) {
                zone.reverse
                    .entry(key(&Name::from(addr).to_ascii()))
                    .or_insert_with(|| owner.clone());
                if !ids.is_empty() {
                    zone.ids_by_addr.entry(addr).or_insert_with(|| ids.clone());
                }
            }
        }
        zone
    }

    /// Whether `key` (see [`key`]) is a name on the network.
    pub fn knows(&self, key: &str) -> bool {
        self.names.contains_key(key)
    }

    /// The IPv4 addresses of `key`, rotated by one on every call; `None`
    /// when the name is not on the network.
    pub fn ipv4(&self, key: &str) -> Option<Vec<Ipv4Addr>> {
        let e = self.names.get(key)?;
        Some(rotated(&e.v4, &e.next_v4))
    }

    /// The IPv6 addresses of `key`, rotated like [`Zone::ipv4`].
    pub fn ipv6(&self, key: &str) -> Option<Vec<Ipv6Addr>> {
        let e = self.names.get(key)?;
        Some(rotated(&e.v6, &e.next_v6))
    }

    /// The name that owns the address of the reverse name `key`.
    pub fn ptr(&self, key: &str) -> Option<&Name> {
        self.reverse.get(key)
    }

    /// The short ids of the container that has `addr` on this network.
    pub fn ids_of(&self, addr: IpAddr) -> &[String] {
        self.ids_by_addr.get(&addr).map_or(&[], Vec::as_slice)
    }

    /// The name `key` stands for when the container at `client` asks:
    /// one of its links' targets, or `key` itself.
    pub fn linked<'a>(&'a self, client: IpAddr, key: &'a str) -> &'a str {
        self.links_by_addr
            .get(&client)
            .and_then(|l| l.get(key))
            .map_or(key, String::as_str)
    }

    /// Whether the container with short id `id` is on this network.
    pub fn has_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

/// `addrs` starting at the next one in turn (service-style round robin).
fn rotated<T: Copy>(addrs: &[T], next: &AtomicUsize) -> Vec<T> {
    if addrs.len() < 2 {
        return addrs.to_vec();
    }
    let start = next.fetch_add(1, Ordering::Relaxed) % addrs.len();
    let mut out = addrs.to_vec();
    out.rotate_left(start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Record;

    fn rec(names: &[&str], v4: &[&str], v6: &[&str]) -> Record {
        Record {
            names: names.iter().map(|s| s.to_string()).collect(),
            ipv4: v4.iter().map(|s| s.parse().unwrap()).collect(),
            ipv6: v6.iter().map(|s| s.parse().unwrap()).collect(),
            links: Default::default(),
        }
    }

    fn net(records: Vec<Record>) -> NetworkDns {
        NetworkDns {
            network_id: "n1".into(),
            network_name: "Front".into(),
            listen: vec![],
            subnets: vec![],
            records,
            upstreams: vec![],
        }
    }

    #[test]
    fn names_match_any_case_with_or_without_dot_and_network_suffix() {
        let z = Zone::build(&net(vec![rec(
            &["Web", "0123456789ab"],
            &["10.0.0.2"],
            &["fd00::2"],
        )]));
        for q in ["web", "WEB.", "web.front", "Web.FRONT.", "0123456789AB."] {
            assert_eq!(
                z.ipv4(&key(q)),
                Some(vec!["10.0.0.2".parse().unwrap()]),
                "{q}"
            );
            assert_eq!(
                z.ipv6(&key(q)),
                Some(vec!["fd00::2".parse().unwrap()]),
                "{q}"
            );
        }
        for q in ["we", "web.back", "front", "web.front.x"] {
            assert!(!z.knows(&key(q)), "{q}");
            assert_eq!(z.ipv4(&key(q)), None);
        }
    }

    #[test]
    fn known_name_without_the_type_is_empty_not_unknown() {
        let z = Zone::build(&net(vec![rec(&["db"], &["10.0.0.3"], &[])]));
        assert_eq!(z.ipv6("db"), Some(vec![]));
        assert!(z.knows("db"));
    }

    #[test]
    fn shared_alias_rotates_through_every_address() {
        let z = Zone::build(&net(vec![
            rec(&["a", "svc"], &["10.0.0.2"], &[]),
            rec(&["b", "svc"], &["10.0.0.3"], &[]),
            rec(&["c", "svc"], &["10.0.0.4"], &[]),
        ]));
        let mut firsts = Vec::new();
        for _ in 0..6 {
            let got = z.ipv4("svc").unwrap();
            assert_eq!(got.len(), 3);
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                ["10.0.0.2", "10.0.0.3", "10.0.0.4"].map(|s| s.parse::<Ipv4Addr>().unwrap())
            );
            firsts.push(got[0].to_string());
        }
        assert_eq!(
            firsts,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        );
        // One container's own name does not rotate into the others'.
        assert_eq!(
            z.ipv4("b").unwrap(),
            vec!["10.0.0.3".parse::<Ipv4Addr>().unwrap()]
        );
    }

    #[test]
    fn reverse_names_give_the_qualified_first_name() {
        let z = Zone::build(&net(vec![rec(
            &["web", "alias"],
            &["10.0.0.2"],
            &["fd00::2"],
        )]));
        let want = Name::from_ascii("web.front.").unwrap();
        assert_eq!(z.ptr("2.0.0.10.in-addr.arpa"), Some(&want));
        let v6 = key(&Name::from("fd00::2".parse::<IpAddr>().unwrap()).to_ascii());
        assert!(v6.ends_with("ip6.arpa"), "{v6}");
        assert_eq!(z.ptr(&v6), Some(&want));
        assert_eq!(z.ptr("3.0.0.10.in-addr.arpa"), None);
    }

    #[test]
    fn containers_are_known_by_short_id() {
        let z = Zone::build(&net(vec![
            rec(&["web", "0123456789AB"], &["10.0.0.2"], &["fd00::2"]),
            rec(&["db", "not-an-id-xx"], &["10.0.0.3"], &[]),
        ]));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(z.ids_of(ip("10.0.0.2")), ["0123456789ab"]);
        assert_eq!(z.ids_of(ip("fd00::2")), ["0123456789ab"]);
        assert!(z.ids_of(ip("10.0.0.3")).is_empty());
        assert!(z.ids_of(ip("10.0.0.9")).is_empty());
        assert!(z.has_id("0123456789ab") && !z.has_id("not-an-id-xx"));
    }

    #[test]
    fn names_that_cannot_be_dns_names_are_skipped() {
        let long = "x".repeat(64);
        let z = Zone::build(&net(vec![rec(
            &["", "a b", "a..b", &long, "ok"],
            &["10.0.0.2"],
            &[],
        )]));
        assert_eq!(z.names.len(), 2, "{:?}", z.names.keys()); // ok, ok.front
    }
}
