//! `process.execCPUAffinity` (OCI 1.2): the CPUs an exec'd process runs on
//! before it joins the container's cgroup (`initial`) and after (`final`;
//! without it, whatever the cgroup's cpuset leaves).

use rustix::thread::CpuSet;

use crate::error::{Error, Result};

/// A kernel CPU list (`0-3,7`) as a set; `field` names it in errors.
pub fn parse_cpu_list(list: &str, field: &str) -> Result<CpuSet> {
    let invalid = |why: String| Error::InvalidArgument(format!("{field}: {list:?}: {why}"));
    let mut set = CpuSet::new();
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let cpu = |s: &str| -> Result<usize> {
            let n: usize = s
                .trim()
                .parse()
                .map_err(|_| invalid(format!("{s:?} is not a CPU number")))?;
            if n >= CpuSet::MAX_CPU {
                return Err(invalid(format!(
                    "CPU {n} is beyond the last one ({})",
                    CpuSet::MAX_CPU - 1
                )));
            }
            Ok(n)
        };
        let (first, last) = (cpu(first)?, cpu(last)?);
        if first > last {
            return Err(invalid(format!("the range {part:?} runs backwards")));
        }
        for n in first..=last {
            set.set(n);
        }
    }
    Ok(set)
}

/// The initial and final sets of `process`, checked.
pub struct ExecAffinity {
    pub initial: Option<CpuSet>,
    pub last: Option<CpuSet>,
}

impl ExecAffinity {
    pub fn of(process: &oci_spec::runtime::Process) -> Result<ExecAffinity> {
        let Some(a) = process.exec_cpu_affinity() else {
            return Ok(ExecAffinity {
                initial: None,
                last: None,
            });
        };
        let parse = |list: &Option<String>, field: &str| {
            list.as_deref()
                .map(|l| parse_cpu_list(l, field))
                .transpose()
        };
        Ok(ExecAffinity {
            initial: parse(a.initial(), "process.execCPUAffinity.initial")?,
            last: parse(a.cpu_affinity_final(), "process.execCPUAffinity.final")?,
        })
    }

    /// Pins `pid` to `set`, when there is one.
    pub fn apply(set: Option<&CpuSet>, pid: i32, what: &str) -> Result<()> {
        let Some(set) = set else {
            return Ok(());
        };
        rustix::thread::sched_setaffinity(rustix::process::Pid::from_raw(pid), set).map_err(|e| {
            Error::InvalidArgument(format!(
                "process.execCPUAffinity.{what}: setting the CPU affinity of pid {pid}: {} (are those CPUs online and in the container's cpuset?)",
                std::io::Error::from(e)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let set = parse_cpu_list("0-2,5", "f").unwrap();
        let on: Vec<usize> = (0..8).filter(|n| set.is_set(*n)).collect();
        assert_eq!(on, [0, 1, 2, 5]);
        for bad in ["", "a", "3-1", "1,,2", "99999"] {
            assert!(parse_cpu_list(bad, "f").is_err(), "{bad}");
        }
    }
}
