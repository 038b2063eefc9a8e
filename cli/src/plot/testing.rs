//! Checks shared by the figure tests: decode the PNG, parse the SVG, count what was drawn.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

/// A fresh directory for one test's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bootflow-plot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub struct Png {
    rgb: Vec<u8>,
}

impl Png {
    pub fn count(&self, c: RGBColor) -> usize {
        self.rgb.chunks_exact(3).filter(|p| p[0] == c.0 && p[1] == c.1 && p[2] == c.2).count()
    }

    /// Text glyphs and axes are black, anti-aliased: count near-black pixels.
    pub fn has_text_pixels(&self) -> bool {
        self.rgb.chunks_exact(3).filter(|p| p.iter().all(|&v| v < 60)).count() > 500
    }
}

/// Decodes the PNG, checks its size, and that it is far from blank (many distinct colours).
pub fn check_png(path: &Path, size: (u32, u32)) -> Png {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgb).unwrap();
    assert_eq!((info.width, info.height), size, "{}", path.display());
    assert_eq!(info.color_type, png::ColorType::Rgb);
    rgb.truncate(info.buffer_size());
    let distinct: HashSet<&[u8]> = rgb.chunks_exact(3).collect();
    assert!(distinct.len() >= 8, "{}: only {} colours", path.display(), distinct.len());
    Png { rgb }
}

/// Element names of a parsed SVG document and how often each occurs.
#[derive(Debug)]
pub struct SvgSummary(HashMap<String, usize>);

impl SvgSummary {
    pub fn count(&self, element: &str) -> usize {
        self.0.get(element).copied().unwrap_or(0)
    }
}

/// Parses the SVG as XML; the root must be `<svg>`.
pub fn check_svg(path: &Path) -> SvgSummary {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut counts = HashMap::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        *counts.entry(node.tag_name().name().to_string()).or_insert(0) += 1;
    }
    SvgSummary(counts)
}

pub type Points = Vec<(f64, f64)>;

/// Two deterministic point clouds around the modes used in the figure tests.
pub fn two_clouds() -> (Points, Points) {
    let cloud = |n: usize, spread: f64| -> Points {
        (0..n)
            .map(|k| {
                let t = k as f64 * 2.399_963; // golden angle: an even, deterministic spiral
                let r = spread * ((k as f64 + 0.5) / n as f64).sqrt();
                let s = if k % 2 == 0 { 1.0 } else { -1.0 };
                (s * 1.5 + r * t.cos(), s * 1.0 + r * t.sin())
            })
            .collect()
    };
    (cloud(300, 1.4), cloud(300, 0.8))
}
