//! A check that an ELF file is complete before the system loader maps it: a file cut short can
//! be mapped past its end, and touching those pages kills the process (SIGBUS) instead of
//! returning an error. Files that are not ELF are left to the system loader.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const PT_LOAD: u32 = 1;

/// Little- or big-endian field reader over a byte buffer.
struct Fields<'a> {
    b: &'a [u8],
    little: bool,
}

impl Fields<'_> {
    fn get(&self, at: usize, width: usize) -> Option<u64> {
        let bytes = self.b.get(at..at + width)?;
        let mut v = 0u64;
        for i in 0..width {
            let byte = if self.little { bytes[width - 1 - i] } else { bytes[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    }
}

/// `Err(reason)` when `path` is an ELF file whose headers or loadable segments extend past its end.
pub fn check_complete(path: &Path) -> Result<(), String> {
    let mut f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map_err(|e| format!("cannot stat: {e}"))?.len();
    let mut head = [0u8; 64];
    let got = read_up_to(&mut f, &mut head)?;
    if got < 4 || &head[..4] != b"\x7fELF" {
        return Ok(());
    }
    let short = |what: &str| format!("{len} bytes, too short for its {what}");
    let (wide, little) = (head.get(4) == Some(&2), head.get(5) == Some(&1));
    let header_len = if wide { 64 } else { 52 };
    if got < header_len {
        return Err(short("ELF header"));
    }
    let h = Fields { b: &head, little };
    let w = if wide { 8 } else { 4 };
    // e_entry, e_phoff, e_shoff follow the 24 fixed bytes; then e_flags (4) and e_ehsize (2).
    let (ph_off, sh_off) = (h.get(24 + w, w).unwrap_or(0), h.get(24 + 2 * w, w).unwrap_or(0));
    let base = 24 + 3 * w + 4 + 2;
    let field = |i: usize| h.get(base + 2 * i, 2).unwrap_or(0);
    let (ph_size, ph_num, sh_size, sh_num) = (field(0), field(1), field(2), field(3));
    let ph_end = ph_off.saturating_add(ph_size.saturating_mul(ph_num));
    if ph_end > len {
        return Err(short("program headers"));
    }
    if sh_off != 0 && sh_off.saturating_add(sh_size.saturating_mul(sh_num)) > len {
        return Err(short("section headers"));
    }
    let mut table = vec![0u8; (ph_end - ph_off) as usize];
    f.seek(SeekFrom::Start(ph_off)).map_err(|e| format!("cannot read: {e}"))?;
    f.read_exact(&mut table).map_err(|e| format!("cannot read: {e}"))?;
    let t = Fields { b: &table, little };
    // p_offset and p_filesz: 64-bit at 8 and 32; 32-bit at 4 and 16.
    let (off_at, size_at) = if wide { (8, 32) } else { (4, 16) };
    for k in 0..ph_num as usize {
        let at = k * ph_size as usize;
        if t.get(at, 4) != Some(PT_LOAD as u64) {
            continue;
        }
        let (off, size) = (t.get(at + off_at, w).unwrap_or(0), t.get(at + size_at, w).unwrap_or(0));
        if off.saturating_add(size) > len {
            return Err(short("loadable segments"));
        }
    }
    Ok(())
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> Result<usize, String> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]).map_err(|e| format!("cannot read: {e}"))? {
            0 => break,
            k => got += k,
        }
    }
    Ok(got)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn accepts_complete_libraries_and_refuses_cut_copies() {
        // The test executable itself is a complete ELF file.
        let exe = std::env::current_exe().unwrap();
        check_complete(&exe).unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let dir = std::env::temp_dir().join(format!("bootflow-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for cut in [10, 60, 4096, bytes.len() / 2] {
            let p = dir.join(format!("cut{cut}"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = check_complete(&p).unwrap_err();
            assert!(e.contains("too short"), "{cut}: {e}");
        }
        let text = dir.join("text");
        std::fs::write(&text, b"not elf").unwrap();
        check_complete(&text).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
