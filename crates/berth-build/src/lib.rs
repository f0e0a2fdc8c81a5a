#![forbid(unsafe_code)]
//! Dockerfile parsing for berth's builder, with BuildKit's rules: the
//! instructions of a Dockerfile and their arguments ([`parse`]), variables
//! and quotes in those arguments ([`words`]), and `.dockerignore` patterns
//! ([`ignore`]). No I/O: the daemon's builder (berth-daemon's `build`
//! module) runs the instructions.

pub mod ignore;
pub mod parse;
pub mod words;

pub use ignore::Ignore;
pub use parse::{parse, Args, Dockerfile, Heredoc, Instruction, Pair, ParseError};
pub use words::{expand, words, Lexer, NoVars, Vars, WordError};
