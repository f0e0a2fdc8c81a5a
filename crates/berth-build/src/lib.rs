#![forbid(unsafe_code)]
//! Dockerfile parsing for berth's builder: the instructions of a
//! Dockerfile ([`parse`]), the words and variables of their arguments
//! ([`words`]), and `.dockerignore` patterns ([`ignore`]). No I/O: the
//! daemon's builder (berth-daemon's `build` module) runs the instructions.

pub mod ignore;
pub mod parse;
pub mod words;

pub use ignore::Ignore;
pub use parse::{parse, Args, Dockerfile, Instruction, ParseError};
pub use words::{expand, pairs, words, Vars, WordError};
