//! The state as one nft JSON transaction (libnftables-json(5)): pure.
//!
//! The table, in nft's words (`X` a bridge, `S` one of its subnets):
//! ```text
//! table inet <name> {
//!   set bridges { type ifname; elements = { every berth bridge } }
//!   chain forward {      # filter, hook forward, policy accept
//!     iifname X oifname != X drop          # X internal: nothing leaves it
//!     oifname X iifname != X drop          # X internal: nothing enters it
//!     ct status dnat accept                # published ports, from anywhere
//!     iifname X oifname X accept|drop      # icc on X
//!     iifname @bridges oifname @bridges drop   # isolation between networks
//!   }
//!   chain prerouting {   # nat, hook prerouting: from outside and containers
//!     fib daddr type local jump published
//!   }
//!   chain output {       # nat, hook output: from the host itself
//!     fib daddr type local jump published
//!   }
//!   chain published {    # one rule per port
//!     [ip daddr H | meta nfproto ipv4] tcp dport P dnat ip to C:CP
//!   }
//!   chain postrouting {  # nat, hook postrouting
//!     ip saddr S oifname != X masquerade            # outbound (masquerade on)
//!     oifname X ip saddr 127.0.0.0/8 masquerade     # host loopback to ports
//!     oifname X ct status dnat ip saddr S masquerade  # hairpin
//!   }
//! }
//! ```
//! Internal networks get no masquerade and publish no ports. Every chain's
//! policy is accept: the table only ever drops traffic of berth's bridges.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::{FirewallError, FirewallState, FwPort};

/// One `inet` table holds both IP families' rules.
pub(super) const FAMILY: &str = "inet";

const FORWARD: &str = "forward";
const PREROUTING: &str = "prerouting";
const OUTPUT: &str = "output";
const POSTROUTING: &str = "postrouting";
const PUBLISHED: &str = "published";
const BRIDGES: &str = "bridges";

/// nft's hook priorities: filter 0, dstnat -100, srcnat 100.
const PRIO_FILTER: i32 = 0;
const PRIO_DSTNAT: i32 = -100;
const PRIO_SRCNAT: i32 = 100;

/// The transaction that makes `table` exactly `state`: add the table (so
/// the delete cannot fail), delete it, add it again with everything in it.
/// Ports nft could not express (a host address of another IP family than
/// the container's) are left out; [`validate`] refuses them before apply.
pub fn render(table: &str, state: &FirewallState) -> Value {
    let mut tx = Tx::new(table);
    tx.replace_table();
    tx.chain(FORWARD, Some(("filter", "forward", PRIO_FILTER)));
    tx.chain(PREROUTING, Some(("nat", "prerouting", PRIO_DSTNAT)));
    tx.chain(OUTPUT, Some(("nat", "output", PRIO_DSTNAT)));
    tx.chain(PUBLISHED, None);
    tx.chain(POSTROUTING, Some(("nat", "postrouting", PRIO_SRCNAT)));
    tx.bridges_set(state);
    forward_rules(&mut tx, state);
    published_rules(&mut tx, state);
    postrouting_rules(&mut tx, state);
    json!({ "nftables": tx.commands })
}

/// The transaction that deletes `table` whether or not it exists.
pub(super) fn remove(table: &str) -> Value {
    let mut tx = Tx::new(table);
    tx.add("table", Map::new());
    tx.command("delete", "table", Map::new());
    json!({ "nftables": tx.commands })
}

fn forward_rules(tx: &mut Tx, state: &FirewallState) {
    for n in state.networks.iter().filter(|n| n.internal) {
        let b = n.bridge.as_str();
        tx.rule(
            FORWARD,
            "internal network: nothing leaves it",
            vec![iifname("==", b), oifname("!=", b), verdict("drop")],
        );
        tx.rule(
            FORWARD,
            "internal network: nothing enters it",
            vec![oifname("==", b), iifname("!=", b), verdict("drop")],
        );
    }
    tx.rule(
        FORWARD,
        "published ports are open to every network",
        vec![ct_status_dnat(), verdict("accept")],
    );
    for n in &state.networks {
        let b = n.bridge.as_str();
        let (comment, v) = if n.icc {
            ("containers on one bridge talk (icc)", "accept")
        } else {
            ("containers on one bridge are kept apart (icc off)", "drop")
        };
        tx.rule(
            FORWARD,
            comment,
            vec![iifname("==", b), oifname("==", b), verdict(v)],
        );
    }
    if !state.networks.is_empty() {
        let set = format!("@{BRIDGES}");
        tx.rule(
            FORWARD,
            "isolation between networks",
            vec![iifname("==", &set), oifname("==", &set), verdict("drop")],
        );
    }
}

fn published_rules(tx: &mut Tx, state: &FirewallState) {
    for chain in [PREROUTING, OUTPUT] {
        let local = matches(
            "==",
            json!({ "fib": { "result": "type", "flags": ["daddr"] } }),
            "local",
        );
        tx.rule(
            chain,
            "to a local address",
            vec![local, json!({ "jump": { "target": PUBLISHED } })],
        );
    }
    let internal: BTreeSet<&str> = state
        .networks
        .iter()
        .filter(|n| n.internal)
        .map(|n| n.bridge.as_str())
        .collect();
    // Ports bound to one address go first, so they win over a wildcard on
    // the same port whatever order the caller listed them in.
    let mut ports: Vec<&FwPort> = state
        .ports
        .iter()
        .filter(|p| !internal.contains(p.bridge.as_str()))
        .collect();
    ports.sort_by_key(|p| host_ip(p).is_none());
    for p in ports {
        let Some(dnat_family) = family_of(p) else {
            continue;
        };
        let to_address = match host_ip(p) {
            Some(ip) => matches("==", payload(ip_proto(ip), "daddr"), ip.to_string()),
            None => matches(
                "==",
                meta("nfproto"),
                if p.container_ip.is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                },
            ),
        };
        let dport = matches("==", payload(p.protocol.name(), "dport"), p.host_port);
        let dnat = json!({ "dnat": {
            "family": dnat_family,
            "addr": p.container_ip.to_string(),
            "port": p.container_port,
        }});
        tx.rule(PUBLISHED, &p.bridge, vec![to_address, dport, dnat]);
    }
}

fn postrouting_rules(tx: &mut Tx, state: &FirewallState) {
    for n in state.networks.iter().filter(|n| !n.internal) {
        let b = n.bridge.as_str();
        if n.masquerade {
            for s in &n.subnets {
                tx.rule(
                    POSTROUTING,
                    "outbound",
                    vec![saddr_in(s), oifname("!=", b), verdict("masquerade")],
                );
            }
        }
        let loopback: IpNet = "127.0.0.0/8".parse().expect("a valid prefix");
        tx.rule(
            POSTROUTING,
            "from the host's loopback to a published port (route_localnet)",
            vec![oifname("==", b), saddr_in(&loopback), verdict("masquerade")],
        );
        for s in &n.subnets {
            tx.rule(
                POSTROUTING,
                "hairpin: a container to a published port on its own bridge",
                vec![
                    oifname("==", b),
                    ct_status_dnat(),
                    saddr_in(s),
                    verdict("masquerade"),
                ],
            );
        }
    }
}

/// The port's host address, `None` for any (an unspecified one included).
fn host_ip(p: &FwPort) -> Option<IpAddr> {
    p.host_ip.filter(|ip| !ip.is_unspecified())
}

/// nft's family for the DNAT, or `None` when the host address and the
/// container's are of different families (NAT cannot cross them).
fn family_of(p: &FwPort) -> Option<&'static str> {
    match host_ip(p) {
        Some(h) if h.is_ipv4() != p.container_ip.is_ipv4() => None,
        _ => Some(ip_proto(p.container_ip)),
    }
}

fn ip_proto(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn matches(op: &str, left: Value, right: impl Into<Value>) -> Value {
    json!({ "match": { "op": op, "left": left, "right": right.into() } })
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

fn iifname(op: &str, name: &str) -> Value {
    matches(op, meta("iifname"), name)
}

fn oifname(op: &str, name: &str) -> Value {
    matches(op, meta("oifname"), name)
}

fn ct_status_dnat() -> Value {
    // A flag test: nft's JSON spells `ct status dnat` with the "in" operator.
    matches("in", json!({ "ct": { "key": "status" } }), "dnat")
}

fn saddr_in(net: &IpNet) -> Value {
    let net = net.trunc();
    let proto = ip_proto(net.addr());
    let prefix = json!({ "prefix": {
        "addr": net.network().to_string(),
        "len": net.prefix_len(),
    }});
    matches("==", payload(proto, "saddr"), prefix)
}

fn verdict(v: &str) -> Value {
    json!({ v: null })
}

/// The commands of one transaction on one table.
struct Tx<'a> {
    table: &'a str,
    commands: Vec<Value>,
}

impl<'a> Tx<'a> {
    fn new(table: &'a str) -> Self {
        Tx {
            table,
            commands: Vec::new(),
        }
    }

    /// `{verb: {kind: {family, table or name, ...body}}}`.
    fn command(&mut self, verb: &str, kind: &str, mut body: Map<String, Value>) {
        body.insert("family".into(), FAMILY.into());
        let key = if kind == "table" { "name" } else { "table" };
        body.insert(key.into(), self.table.into());
        self.commands.push(json!({ verb: { kind: body } }));
    }

    fn add(&mut self, kind: &str, body: Map<String, Value>) {
        self.command("add", kind, body);
    }

    fn replace_table(&mut self) {
        self.add("table", Map::new());
        self.command("delete", "table", Map::new());
        self.add("table", Map::new());
    }

    /// A chain; `hook` = (type, hook, priority) for a base chain.
    fn chain(&mut self, name: &str, hook: Option<(&str, &str, i32)>) {
        let mut body = Map::new();
        body.insert("name".into(), name.into());
        if let Some((kind, hook, prio)) = hook {
            body.insert("type".into(), kind.into());
            body.insert("hook".into(), hook.into());
            body.insert("prio".into(), prio.into());
            body.insert("policy".into(), "accept".into());
        }
        self.add("chain", body);
    }

    fn bridges_set(&mut self, state: &FirewallState) {
        let mut body = Map::new();
        body.insert("name".into(), BRIDGES.into());
        body.insert("type".into(), "ifname".into());
        let names: BTreeSet<&str> = state.networks.iter().map(|n| n.bridge.as_str()).collect();
        if !names.is_empty() {
            body.insert("elem".into(), json!(names));
        }
        self.add("set", body);
    }

    fn rule(&mut self, chain: &str, comment: &str, expr: Vec<Value>) {
        let mut body = Map::new();
        body.insert("chain".into(), chain.into());
        body.insert("expr".into(), expr.into());
        body.insert("comment".into(), comment.into());
        self.add("rule", body);
    }
}

/// Refuses a table name nft's command line would not take back (`list`,
/// `delete`), and berth's own naming rules.
pub(super) fn validate_table(table: &str) -> Result<(), FirewallError> {
    let ok = table.len() <= 64
        && table.starts_with(|c: char| c.is_ascii_alphabetic())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            table,
            "the table name must be 1 to 64 ASCII letters, digits, '_' or '-', starting with a letter"
                .into(),
        ))
    }
}

/// Refuses a state whose rules would not do what it says: bad interface
/// names (nft reads `*` as a wildcard), a bridge listed twice, ports on
/// unknown bridges, port 0, NAT across IP families.
pub(super) fn validate(table: &str, state: &FirewallState) -> Result<(), FirewallError> {
    validate_table(table)?;
    let mut seen = BTreeSet::new();
    for n in &state.networks {
        validate_ifname(table, &n.bridge)?;
        if !seen.insert(n.bridge.as_str()) {
            return Err(invalid(
                table,
                format!("bridge {:?} is listed twice", n.bridge),
            ));
        }
    }
    for p in &state.ports {
        let what = format!(
            "published port {}/{} -> {}:{}",
            p.host_port,
            p.protocol.name(),
            p.container_ip,
            p.container_port
        );
        if !seen.contains(p.bridge.as_str()) {
            return Err(invalid(
                table,
                format!("{what}: bridge {:?} is not one of the networks", p.bridge),
            ));
        }
        if p.host_port == 0 || p.container_port == 0 {
            return Err(invalid(
                table,
                format!("{what}: port 0 cannot be published"),
            ));
        }
        if p.container_ip.is_unspecified() {
            return Err(invalid(table, format!("{what}: no container address")));
        }
        if family_of(p).is_none() {
            return Err(invalid(
                table,
                format!(
                    "{what}: host address {} and the container's are of different IP families",
                    host_ip(p).map(|ip| ip.to_string()).unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// An interface name as the kernel takes it (1 to 15 bytes) and as nft
/// matches it literally (no `*`, `\`, quotes or spaces).
fn validate_ifname(table: &str, name: &str) -> Result<(), FirewallError> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            table,
            format!("bridge name {name:?} must be 1 to 15 ASCII letters, digits, '-', '_' or '.'"),
        ))
    }
}

fn invalid(table: &str, reason: String) -> FirewallError {
    FirewallError::Invalid {
        table: table.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests;
