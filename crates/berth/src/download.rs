//! `save` and `export`: a tar the daemon streams, written to `-o FILE` or
//! to standard output.

use std::io::IsTerminal;

use berth_client::Body;

use crate::Ctx;

/// Writes the body of `GET path` to `output`, or to standard output when
/// there is none (refused on a terminal, as docker refuses). A regular
/// file appears whole or not at all: the body goes to a temporary file
/// beside it, which is synced and renamed over `output`, and removed if
/// anything fails. `what` starts every error ("failed to save image").
pub fn body_to_file_or_stdout(
    ctx: &Ctx,
    path: &str,
    output: Option<&str>,
    what: &str,
) -> anyhow::Result<()> {
    if output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let resp = ctx.client.request("GET", path, &[], Body::Empty)?;
    let Some(file) = output else {
        ctx.client.copy_body(path, resp, &mut ctx.out())?;
        return Ok(());
    };
    // A device or a pipe (`-o /dev/stdout`, `-o >(gzip > x.gz)`) is written
    // as it is: a rename would replace it.
    if std::fs::metadata(file).is_ok_and(|m| !m.is_file()) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(|e| anyhow::anyhow!("{what}: opening {file}: {e}"))?;
        ctx.client.copy_body(path, resp, &mut f)?;
        return Ok(());
    }
    let tmp = format!("{file}.berth-tmp");
    let written = (|| -> anyhow::Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| anyhow::anyhow!("{what}: creating {tmp}: {e}"))?;
        ctx.client.copy_body(path, resp, &mut f)?;
        f.sync_all()
            .map_err(|e| anyhow::anyhow!("{what}: writing {tmp}: {e}"))?;
        std::fs::rename(&tmp, file)
            .map_err(|e| anyhow::anyhow!("{what}: renaming {tmp} to {file}: {e}"))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
