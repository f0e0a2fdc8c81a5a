//! Huge page sizes and `linux.resources.hugepageLimits` validation, shared by
//! the v1 and v2 backends (the file names differ, the sizes do not).

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::convert;
use crate::error::Error;

/// Page sizes the kernel offers ("2MB", "1GB"), from /sys/kernel/mm/hugepages.
pub(crate) fn page_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(Path::new("/sys/kernel/mm/hugepages")) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| convert::hugepage_size_name(&e.file_name().to_string_lossy()))
        .collect();
    out.sort();
    out
}

/// One validated limit: (field prefix, page size, bytes).
pub(crate) struct Limit {
    pub field: String,
    pub size: String,
    pub bytes: u64,
}

pub(crate) fn validate(
    limits: &[LinuxHugepageLimit],
    sizes: &[String],
) -> Result<Vec<Limit>, Error> {
    let mut out = Vec::with_capacity(limits.len());
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = l.page_size();
        if !sizes.iter().any(|s| s == size) {
            return Err(Error::invalid(
                format!("{field}.pageSize"),
                format!(
                    "{size:?} is not a huge page size of this kernel (it has: {})",
                    sizes.join(", ")
                ),
            ));
        }
        let bytes = u64::try_from(l.limit()).map_err(|_| {
            Error::invalid(
                format!("{field}.limit"),
                format!("{} is negative", l.limit()),
            )
        })?;
        out.push(Limit {
            field,
            size: size.clone(),
            bytes,
        });
    }
    Ok(out)
}
