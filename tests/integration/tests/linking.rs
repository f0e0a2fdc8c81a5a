//! How berth's binaries are linked (their build.rs and
//! build-support/static_archives.rs): gcc's unwinder (and in those that
//! embed the runtime, libseccomp) is in them, and their math is the libm
//! crate's, so a start of theirs loads glibc's libc.so and nothing else:
//! less to map and relocate at each start of the per-container binaries
//! and the CLI, and less resident in the daemon.

use berth_integration::runtime::berth_binary;

/// The DT_NEEDED entries of a 64-bit little-endian ELF file.
fn needed_libraries(elf: &[u8]) -> Vec<String> {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit ELF expected");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let phoff = u64_at(0x20) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    // (p_type, p_offset, p_vaddr, p_filesz)
    let headers: Vec<(u32, u64, u64, u64)> = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .map(|h| (u32_at(h), u64_at(h + 8), u64_at(h + 16), u64_at(h + 32)))
        .collect();
    let file_offset = |vaddr: u64| {
        headers
            .iter()
            .find(|(t, _, va, size)| *t == PT_LOAD && (*va..va + size).contains(&vaddr))
            .map(|(_, off, va, _)| (vaddr - va + off) as usize)
            .expect("the string table lies in a loaded segment")
    };
    let Some(&(_, dyn_off, _, dyn_size)) = headers.iter().find(|h| h.0 == PT_DYNAMIC) else {
        return Vec::new(); // a static executable needs nothing
    };
    const DT_NEEDED: u64 = 1;
    const DT_STRTAB: u64 = 5;
    let entries: Vec<(u64, u64)> = (dyn_off..dyn_off + dyn_size)
        .step_by(16)
        .map(|e| (u64_at(e as usize), u64_at(e as usize + 8)))
        .take_while(|(tag, _)| *tag != 0)
        .collect();
    let strtab = entries
        .iter()
        .find(|(tag, _)| *tag == DT_STRTAB)
        .map(|(_, addr)| file_offset(*addr))
        .expect("a dynamic section has a string table");
    entries
        .iter()
        .filter(|(tag, _)| *tag == DT_NEEDED)
        .map(|(_, name)| {
            let start = strtab + *name as usize;
            let end = start + elf[start..].iter().position(|b| *b == 0).unwrap();
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect()
}

#[test]
fn berth_binaries_load_only_libc() {
    for name in ["berth-runtime", "berth-shim", "berth", "berthd"] {
        let elf = std::fs::read(berth_binary(name)).unwrap();
        let needed = needed_libraries(&elf);
        assert!(
            needed.iter().any(|l| l.starts_with("libc.so")),
            "{name}: the check reads DT_NEEDED wrong, glibc is missing from {needed:?}"
        );
        let others: Vec<&String> = needed
            .iter()
            .filter(|l| !l.starts_with("libc.so") && !l.starts_with("ld-linux"))
            .collect();
        assert!(
            others.is_empty(),
            "{name} needs {others:?}: link it statically in its build.rs \
             (libgcc_s, libseccomp) or use the libm crate (libm)"
        );
    }
}

/// berth-runtime and berth-shim start most often and are linked at a fixed
/// address (their build.rs: no relocation at each start); the CLI, linked
/// the usual way, is the control.
#[test]
fn runtime_and_shim_are_not_position_independent() {
    const ET_EXEC: u16 = 2;
    const ET_DYN: u16 = 3;
    let elf_type = |name: &str| {
        let elf = std::fs::read(berth_binary(name)).unwrap();
        u16::from_le_bytes([elf[0x10], elf[0x11]])
    };
    for name in ["berth-runtime", "berth-shim"] {
        assert_eq!(elf_type(name), ET_EXEC, "{name} should be linked -no-pie");
    }
    assert_eq!(elf_type("berth"), ET_DYN, "the CLI is a PIE (the control)");
    // The daemon parses untrusted API input for as long as it runs: its
    // code keeps a randomised address (crates/berthd/build.rs).
    assert_eq!(elf_type("berthd"), ET_DYN, "berthd should stay a PIE");
}

/// A control for the parser: a binary linked the usual way (this test
/// itself) needs libgcc_s.
#[test]
fn the_check_sees_libgcc_s_where_it_is_needed() {
    let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let needed = needed_libraries(&elf);
    assert!(
        needed.iter().any(|l| l.starts_with("libgcc_s")),
        "this test (linked as rustc links by default) should need libgcc_s: {needed:?}"
    );
}
