#![forbid(unsafe_code)]
//! The embedded DNS server of berth's user-defined networks.
//!
//! berthd writes one config file per network (who is on it, where to
//! listen, where to forward); the `berth-dns` process serves them and
//! keeps serving while berthd is down or restarting.
