//! `cargo run -p xtask -- tidy` checks the workspace's architectural rules.
//! The same checks run under `cargo test` (see `tidy::tests`).

mod tidy;

fn main() -> anyhow::Result<()> {
    let cmd = std::env::args().nth(1).unwrap_or_default();
    match cmd.as_str() {
        "tidy" => {
            let problems = tidy::check(&tidy::workspace_root())?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                for p in &problems {
                    eprintln!("tidy: {p}");
                }
                anyhow::bail!("{} tidy problem(s)", problems.len())
            }
        }
        _ => anyhow::bail!("usage: cargo run -p xtask -- tidy"),
    }
}
