#![forbid(unsafe_code)]
//! berth's metadata database.
