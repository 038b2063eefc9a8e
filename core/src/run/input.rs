//! Reading input files with a bound: a config, a script or a data file larger than its limit is
//! refused before it is read whole (a path such as `/dev/zero` never ends), and a UTF-8
//! byte-order mark, which some editors and spreadsheet exports write, is dropped.

use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Largest config file or script read (they are a few KiB).
pub const TEXT_LIMIT: u64 = 16 << 20;

/// Largest data file read (points, chains, checkpoints with a replay buffer): 512 MiB (a
/// checkpoint with a full 512,000-point buffer of 32-D points is about 400 MiB), or an eighth of
/// the memory budget if that is less, since reading and parsing hold the text and the values.
pub fn data_limit() -> u64 {
    (crate::run::budget::budget().0 / 8).min(512 << 20)
}

/// The text of `path` (`what` names it in errors), refused past `limit` bytes.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String> {
    let bytes = read_bytes(path, what, limit)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Other(format!("{what} {}: not UTF-8 text (byte {})", path.display(), e.utf8_error().valid_up_to()))
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The bytes of `path`, refused past `limit` bytes.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(format!("reading {what} {}", path.display()), e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Error::Other(format!("{what} {} is a directory, not a file", path.display())));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {what} {}", path.display()), e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Other(format!(
            "{what} {} is larger than {}, the most bootflow reads of such a file",
            path.display(),
            crate::run::budget::show_bytes(limit as f64)
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_files_are_refused_and_a_byte_order_mark_dropped() {
        let dir = std::env::temp_dir().join(format!("bootflow-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.csv");
        std::fs::write(&f, "\u{feff}x,y\n1,2\n").unwrap();
        assert_eq!(read_text(&f, "points file", 100).unwrap(), "x,y\n1,2\n");
        let err = read_text(&f, "points file", 4).unwrap_err().to_string();
        assert!(err.contains("points file") && err.contains("is larger than 4 B"), "{err}");
        let err = read_text(Path::new("/dev/zero"), "points file", 1 << 20).unwrap_err().to_string();
        assert!(err.contains("is larger than 1.0 MiB"), "{err}");
        let err = read_text(&dir, "points file", 100).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        std::fs::write(&f, [0xffu8, 0xfe, 0x00]).unwrap();
        assert!(read_text(&f, "points file", 100).unwrap_err().to_string().contains("not UTF-8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
