//! The config directory: one JSON file per network, written by berthd
//! atomically and read by the server on start and on every SIGHUP.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The largest config file read: a network of thousands of containers
/// stays far below it; anything larger is refused, not parsed.
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;
/// The most network files one server reads.
pub const MAX_NETWORKS: usize = 4096;

/// What the server answers for one user-defined network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDns {
    /// The network's full id; also the config file's name (`<id>.json`).
    pub network_id: String,
    /// The network's name: `<container>.<network_name>` resolves too.
    pub network_name: String,
    /// Where to answer: the network's gateway addresses (port 53, UDP and TCP).
    pub listen: Vec<IpAddr>,
    /// Only clients with a source address in these get answers; others get REFUSED.
    pub subnets: Vec<IpNet>,
    /// The names on the network.
    pub records: Vec<Record>,
    /// Where names that are not on the network are forwarded, in order.
    pub upstreams: Vec<SocketAddr>,
}

/// One container's endpoint on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its container name, network aliases and 12-character short id.
    pub names: Vec<String>,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    /// docker's links on a user-defined network: alias -> a name on the
    /// network, resolved for this container's own queries only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
}

/// The config file of `network_id` in `dir`.
pub fn config_path(dir: &Path, network_id: &str) -> Result<PathBuf, Error> {
    check_network_id(network_id)?;
    Ok(dir.join(format!("{network_id}.json")))
}

/// A network id becomes a file name: it may not name anything outside the
/// directory, nor one of the server's own files.
fn check_network_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidNetworkId(id.to_string()))
    }
}

/// Writes (or replaces) `net`'s config file in `dir`, creating `dir`
/// (mode 0700): written to a temp file and renamed, so the server never
/// reads half a file.
///
/// Neither the file nor the directory is fsynced (two fsyncs less on every
/// start and stop of a container on a user network): the rename alone is
/// what keeps the server from reading half a file, and the syncs matter
/// only after a power loss, which stops the server too. berthd rewrites
/// every network's config from its database at start-up before it starts
/// the server again,
/// so a config lost, empty or stale after a power loss is never read.
pub fn write_network(dir: &Path, net: &NetworkDns) -> Result<(), Error> {
    let path = config_path(dir, &net.network_id)?;
    create_dir(dir)?;
    let json = serde_json::to_vec_pretty(net).map_err(|e| Error::Io {
        what: "encoding the config of",
        path: path.clone(),
        source: e.into(),
    })?;
    let tmp = dir.join(format!(".{}.json.tmp", net.network_id));
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(&json).map_err(io("writing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io("renaming into place", &path))
}

/// Removes `network_id`'s config file from `dir`; a missing file is not an error.
pub fn remove_network(dir: &Path, network_id: &str) -> Result<(), Error> {
    let path = config_path(dir, network_id)?;
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            what: "removing",
            path,
            source,
        }),
    }
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Io {
            what: "creating",
            path: dir.to_path_buf(),
            source,
        })
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            what: "syncing",
            path: dir.to_path_buf(),
            source,
        })
}

/// The config files in `dir` (`*.json`, not dot files), sorted by name.
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                what: "listing",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".json")
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads one config file, bounded, and checks that it is the file of the
/// network it names.
pub fn read_network(path: &Path) -> Result<NetworkDns, Error> {
    let io = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| Error::Io { what, path, source }
    };
    let f = std::fs::File::open(path).map_err(io("opening"))?;
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("reading"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::BadConfig {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    let net: NetworkDns = serde_json::from_slice(&bytes).map_err(|e| Error::BadConfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let expected = format!("{}.json", net.network_id);
    if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
        return Err(Error::BadConfig {
            path: path.to_path_buf(),
            reason: format!("it is the config of network {:?}", net.network_id),
        });
    }
    Ok(net)
}

/// Every readable network config in `dir` (at most [`MAX_NETWORKS`]),
/// with the errors of the files that could not be read: one bad file does
/// not stop the others from being served.
pub fn read_networks(dir: &Path) -> Result<(Vec<NetworkDns>, Vec<Error>), Error> {
    let mut nets = Vec::new();
    let mut errors = Vec::new();
    for path in config_files(dir)?.into_iter().take(MAX_NETWORKS) {
        match read_network(&path) {
            Ok(n) => nets.push(n),
            // Removed between the listing and the read: not an error.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push(e),
        }
    }
    Ok((nets, errors))
}

/// A small network for tests.
#[cfg(test)]
pub(crate) fn tests_sample(id: &str) -> NetworkDns {
    NetworkDns {
        network_id: id.to_string(),
        network_name: "front".to_string(),
        listen: vec!["10.89.0.1".parse().unwrap()],
        subnets: vec!["10.89.0.0/24".parse().unwrap()],
        records: vec![Record {
            names: vec!["web".into(), "0123456789ab".into()],
            ipv4: vec!["10.89.0.2".parse().unwrap()],
            ipv6: vec![],
            links: BTreeMap::new(),
        }],
        upstreams: vec!["127.0.0.53:53".parse().unwrap()],
    }
}

#[cfg(test)]
mod tests {
    use super::tests_sample as sample;
    use super::*;

    #[test]
    fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("dns");
        let a = sample("aaaa");
        let b = sample("bbbb");
        write_network(&d, &a).unwrap();
        write_network(&d, &b).unwrap();
        // The pid file, temp files and other names are not configs.
        std::fs::write(d.join("berth-dns.pid"), "1\n").unwrap();
        std::fs::write(d.join(".cccc.json.tmp"), "{").unwrap();
        let (nets, errors) = read_networks(&d).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(nets, vec![a.clone(), b]);
        remove_network(&d, "bbbb").unwrap();
        remove_network(&d, "bbbb").unwrap();
        assert_eq!(read_networks(&d).unwrap().0, vec![a]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn missing_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (nets, errors) = read_networks(&dir.path().join("none")).unwrap();
        assert!(nets.is_empty() && errors.is_empty());
    }

    #[test]
    fn bad_files_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_network(d, &sample("good")).unwrap();
        std::fs::write(d.join("garbage.json"), "{not json").unwrap();
        // A file that claims to be another network's.
        let other = serde_json::to_vec(&sample("other")).unwrap();
        std::fs::write(d.join("renamed.json"), other).unwrap();
        let big = vec![b' '; MAX_CONFIG_BYTES as usize + 1];
        std::fs::write(d.join("huge.json"), big).unwrap();
        let (nets, errors) = read_networks(d).unwrap();
        assert_eq!(nets.len(), 1);
        assert_eq!(errors.len(), 3, "{errors:?}");
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text.iter().any(|t| t.contains("garbage.json")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("\"other\"")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("larger than")), "{text:?}");
    }

    #[test]
    fn network_ids_cannot_escape_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", ".hidden", "berth dns", &"x".repeat(129)] {
            let mut n = sample("x");
            n.network_id = bad.to_string();
            assert!(
                matches!(
                    write_network(dir.path(), &n),
                    Err(Error::InvalidNetworkId(_))
                ),
                "{bad:?}"
            );
            assert!(remove_network(dir.path(), bad).is_err());
        }
    }
}
