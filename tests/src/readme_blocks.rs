//! The fenced code blocks of one section of a Markdown file, as a shell session replays them:
//! a block tagged `sh` is typed into the shell, a block whose info string holds `file=NAME`
//! (```` ```toml file=run.toml ````) is a file the reader saves under that name. Any other block
//! in the section is an error, so that nothing shown to the reader escapes the run.

use std::fmt::Write as _;

/// What a block asks of the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Commands typed into the shell.
    Shell,
    /// A file saved under this (relative) name.
    File(String),
}

/// One fenced block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub action: Action,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The lines between the fences, each ending in `\n`.
    pub text: String,
}

/// The blocks of the section headed exactly `heading` (e.g. `## Tutorial`), which ends at the
/// next heading of the same or a higher level.
pub fn section_blocks(markdown: &str, heading: &str) -> Result<Vec<Block>, String> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let lines: Vec<&str> = markdown.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == heading).ok_or_else(|| format!("no `{heading}` heading"))?;
    let mut blocks = Vec::new();
    let mut i = start + 1;
    while i < lines.len() {
        let line = lines[i];
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        if let Some(info) = line.strip_prefix("```") {
            let action = action(info, i + 1)?;
            let close = (i + 1..lines.len())
                .find(|&j| lines[j].trim_end() == "```")
                .ok_or_else(|| format!("line {}: the block is never closed", i + 1))?;
            let text = lines[i + 1..close].iter().fold(String::new(), |mut s, l| {
                let _ = writeln!(s, "{l}");
                s
            });
            blocks.push(Block { action, line: i + 1, text });
            i = close;
        }
        i += 1;
    }
    Ok(blocks)
}

fn action(info: &str, line: usize) -> Result<Action, String> {
    let mut words = info.split_whitespace();
    let lang = words.next().unwrap_or("");
    let file = words.find_map(|w| w.strip_prefix("file="));
    match (lang, file) {
        (_, Some(name)) => {
            let safe = !name.is_empty()
                && !name.starts_with('/')
                && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
            if safe { Ok(Action::File(name.to_string())) } else { Err(format!("line {line}: bad file name {name:?}")) }
        }
        ("sh", None) => Ok(Action::Shell),
        _ => Err(format!("line {line}: block ```{info} is neither `sh` nor a file (`{lang} file=NAME`)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title\n\n```sh\nnot in the section\n```\n\n## Tutorial\n\nSave it:\n\n\
        ```toml file=run.toml\nseed = 1\n\n[train]\n```\n\n### Step\n\n```sh\nbootflow train run.toml\ncd x\n```\n\n\
        ## Next\n\n```sh\nafter\n```\n";

    #[test]
    fn blocks_of_the_section_in_order() {
        let blocks = section_blocks(DOC, "## Tutorial").unwrap();
        assert_eq!(
            blocks,
            [
                Block { action: Action::File("run.toml".into()), line: 11, text: "seed = 1\n\n[train]\n".into() },
                Block { action: Action::Shell, line: 19, text: "bootflow train run.toml\ncd x\n".into() },
            ]
        );
    }

    #[test]
    fn untagged_unclosed_and_unsafe_blocks_are_refused() {
        let untagged = "## Tutorial\n```\nls\n```\n";
        assert!(section_blocks(untagged, "## Tutorial").unwrap_err().contains("line 2"));
        let python = "## Tutorial\n```python\nprint(1)\n```\n";
        assert!(section_blocks(python, "## Tutorial").is_err());
        let unclosed = "## Tutorial\n```sh\nls\n";
        assert!(section_blocks(unclosed, "## Tutorial").unwrap_err().contains("never closed"));
        for name in ["/etc/passwd", "../up", "a//b", "", "a$b"] {
            let doc = format!("## Tutorial\n```toml file={name}\n```\n");
            assert!(section_blocks(&doc, "## Tutorial").is_err(), "{name:?} accepted");
        }
        assert!(section_blocks(DOC, "## Missing").unwrap_err().contains("no `## Missing`"));
    }
}
