//! The identifiers a script mentions, with their positions.
//!
//! Used to reject parameters the script never mentions (a misspelt `--set` would otherwise be
//! silently ignored) and to point errors at a function's definition. Comments and the text of
//! `"..."` strings and `'c'` characters are skipped; back-tick strings are scanned like code,
//! because their `${...}` parts are code (so a name inside their text also counts as mentioned).

/// An identifier and its 1-based line and column (in characters, as Rhai counts them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ident {
    pub name: String,
    pub line: usize,
    pub col: usize,
}

/// Every identifier of `src` in order of appearance.
pub(crate) fn identifiers(src: &str) -> Vec<Ident> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0, 1, 1);
    // Advances one character, keeping line and column.
    let step = |i: &mut usize, line: &mut usize, col: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let ch = chars[i];
        let next = chars.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                step(&mut i, &mut line, &mut col);
            }
        } else if ch == '/' && next == Some('*') {
            // Rhai block comments nest.
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    step(&mut i, &mut line, &mut col);
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    step(&mut i, &mut line, &mut col);
                    if depth == 0 {
                        step(&mut i, &mut line, &mut col);
                        break;
                    }
                }
                step(&mut i, &mut line, &mut col);
            }
        } else if ch == '"' || ch == '\'' {
            step(&mut i, &mut line, &mut col);
            while i < chars.len() && chars[i] != ch {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    step(&mut i, &mut line, &mut col);
                }
                step(&mut i, &mut line, &mut col);
            }
            if i < chars.len() {
                step(&mut i, &mut line, &mut col);
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let (l, c, start) = (line, col, i);
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                step(&mut i, &mut line, &mut col);
            }
            out.push(Ident { name: chars[start..i].iter().collect(), line: l, col: c });
        } else if ch.is_ascii_digit() {
            // Numbers such as 1e5 or 0x1F must not yield identifiers.
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                step(&mut i, &mut line, &mut col);
            }
        } else {
            step(&mut i, &mut line, &mut col);
        }
    }
    out
}

/// Position of the name in the first `fn NAME` definition, if any.
pub(crate) fn fn_definition(idents: &[Ident], name: &str) -> Option<(usize, usize)> {
    idents.windows(2).find(|w| w[0].name == "fn" && w[1].name == name).map(|w| (w[1].line, w[1].col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_comments_strings_and_numbers() {
        let src = "// alpha\nconst DIM = 2; /* beta /* nested */ gamma */ let s = \"delta\" + 'e';\nfn log_prob(x) { 1e5 + x[0] }";
        let names: Vec<String> = identifiers(src).into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["const", "DIM", "let", "s", "fn", "log_prob", "x", "x"]);
    }

    #[test]
    fn finds_function_definitions_with_positions() {
        let idents = identifiers("const DIM = 1;\n\n  fn log_prob(x) {\n  x[0] }");
        assert_eq!(fn_definition(&idents, "log_prob"), Some((3, 6)));
        assert_eq!(fn_definition(&idents, "grad_log_prob"), None);
    }
}
