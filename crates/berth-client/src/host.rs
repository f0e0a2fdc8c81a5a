//! Where the daemon listens, from `-H`, `BERTH_HOST` or `DOCKER_HOST`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::Error;

/// berthd's default socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// A daemon address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl Host {
    /// Parses docker's host syntax: `unix:///path`, `tcp://host:port`,
    /// `tcp://host` (port 2375), or a bare absolute socket path.
    pub fn parse(s: &str) -> Result<Host, Error> {
        let invalid = |reason| Error::InvalidHost {
            host: s.to_string(),
            reason,
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("the socket path is empty"));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        if let Some(rest) = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
        {
            let rest = rest.trim_end_matches('/');
            if rest.is_empty() {
                return Err(invalid("the tcp address is empty"));
            }
            if rest.contains('/') {
                return Err(invalid("a path after the tcp address is not supported"));
            }
            let has_port = match rest.rfind(':') {
                Some(i) => !rest.ends_with(']') && rest[i + 1..].parse::<u16>().is_ok(),
                None => false,
            };
            return Ok(Host::Tcp(if has_port {
                rest.to_string()
            } else {
                format!("{rest}:2375")
            }));
        }
        if s.starts_with("ssh://") || s.starts_with("npipe://") || s.starts_with("fd://") {
            return Err(invalid("this transport is not supported"));
        }
        Err(invalid("unknown scheme"))
    }

    /// The host from the environment (`BERTH_HOST`, then `DOCKER_HOST`),
    /// else berthd's default socket.
    pub fn from_env() -> Result<Host, Error> {
        for var in ["BERTH_HOST", "DOCKER_HOST"] {
            if let Ok(v) = std::env::var(var) {
                if !v.is_empty() {
                    return Host::parse(&v);
                }
            }
        }
        Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET)))
    }

    pub(crate) fn connect(&self) -> Result<Conn, Error> {
        let conn = match self {
            Host::Unix(p) => UnixStream::connect(p).map(Conn::Unix),
            Host::Tcp(a) => TcpStream::connect(a).map(|s| {
                // Small requests and interactive streams: no Nagle delay.
                let _ = s.set_nodelay(true);
                Conn::Tcp(s)
            }),
        };
        conn.map_err(|source| Error::Connect {
            host: self.to_string(),
            source,
        })
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// One connection to the daemon.
#[derive(Debug)]
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    /// Half-closes the write side: the daemon sees EOF on the container's stdin.
    pub fn close_write(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_host_syntax() {
        assert_eq!(
            Host::parse("unix:///run/x.sock").unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Host::parse("/a.sock").unwrap(),
            Host::Unix("/a.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://1.2.3.4").unwrap(),
            Host::Tcp("1.2.3.4:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://h:99/").unwrap(),
            Host::Tcp("h:99".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://").is_err());
        assert!(Host::parse("foo").is_err());
    }
}
