//! Owner id mapping between a layer (container ids) and the host.
//!
//! Used for user-namespace remapping: a layer's uid 0 is stored on disk as
//! the host id the container's root maps to. Ranges have the shape of
//! `/proc/PID/uid_map` lines.

/// One contiguous range: container ids `container..container+size` are host
/// ids `host..host+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// Separate uid and gid ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

fn to_host(ranges: &[IdRange], id: u64) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(u64::from(r.container))?;
        (off < u64::from(r.size)).then(|| r.host + off as u32)
    })
}

fn to_container(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let off = id.checked_sub(r.host)?;
        (off < r.size).then(|| r.container + off)
    })
}

impl IdMap {
    /// Host uid for a container uid, if mapped.
    pub fn uid_to_host(&self, uid: u64) -> Option<u32> {
        to_host(&self.uids, uid)
    }

    /// Host gid for a container gid, if mapped.
    pub fn gid_to_host(&self, gid: u64) -> Option<u32> {
        to_host(&self.gids, gid)
    }

    /// Container uid for a host uid, if mapped.
    pub fn uid_to_container(&self, uid: u32) -> Option<u32> {
        to_container(&self.uids, uid)
    }

    /// Container gid for a host gid, if mapped.
    pub fn gid_to_container(&self, gid: u32) -> Option<u32> {
        to_container(&self.gids, gid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_and_refuses_the_unmapped() {
        let m = IdMap {
            uids: vec![IdRange {
                container: 0,
                host: 100_000,
                size: 65_536,
            }],
            gids: vec![
                IdRange {
                    container: 0,
                    host: 200_000,
                    size: 10,
                },
                IdRange {
                    container: 10,
                    host: 300_000,
                    size: 10,
                },
            ],
        };
        assert_eq!(m.uid_to_host(0), Some(100_000));
        assert_eq!(m.uid_to_host(65_535), Some(165_535));
        assert_eq!(m.uid_to_host(65_536), None);
        assert_eq!(m.uid_to_host(u64::MAX), None);
        assert_eq!(m.gid_to_host(12), Some(300_002));
        assert_eq!(m.gid_to_container(300_002), Some(12));
        assert_eq!(m.uid_to_container(99_999), None);
    }
}
