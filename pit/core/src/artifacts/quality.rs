//! Structure scores the store computes itself, and the utility formula.
//!
//! | kind                   | structure                                                        |
//! |------------------------|------------------------------------------------------------------|
//! | `json`                 | 1.0 if the bytes are one RFC 8259 JSON value (UTF-8), else 0.0   |
//! | `jsonl`                | fraction of non-empty lines that are JSON values                 |
//! | `text`                 | 1.0 if valid UTF-8 with no NUL byte, else 0.0                    |
//! | `markdown`             | text rule; 0.5 if a ``` code fence is left open                  |
//! | `binary`               | 1.0 (any bytes are valid)                                        |
//! | `python`               | computed by the Python binding with `compile()` (not here)       |
//! | anything else          | unscored (`None`) unless the caller supplies a score             |

/// Structure score for `kind`, `None` when the store does not know the kind.
pub fn structure(kind: &str, data: &[u8]) -> Option<f32> {
    match kind {
        "json" => Some(if is_json(data) { 1.0 } else { 0.0 }),
        "jsonl" => {
            let Ok(s) = std::str::from_utf8(data) else {
                return Some(0.0);
            };
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                return Some(0.0);
            }
            let ok = lines.iter().filter(|l| is_json(l.as_bytes())).count();
            Some(ok as f32 / lines.len() as f32)
        }
        "text" => Some(if is_text(data) { 1.0 } else { 0.0 }),
        "markdown" => Some(if !is_text(data) {
            0.0
        } else if fences_balanced(data) {
            1.0
        } else {
            0.5
        }),
        "binary" => Some(1.0),
        _ => None,
    }
}

fn is_text(data: &[u8]) -> bool {
    !data.contains(&0) && std::str::from_utf8(data).is_ok()
}

fn fences_balanced(data: &[u8]) -> bool {
    let s = std::str::from_utf8(data).unwrap_or("");
    s.lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count()
        % 2
        == 0
}

/// Utility from reuse and downstream acceptance: `(r + 2s) / (r + 2s + 2f + 4)` with `r` reuses,
/// `s` successful and `f` failed runs it contributed to.
pub fn utility(reuses: u32, successes: u32, failures: u32) -> f32 {
    let good = f64::from(reuses) + 2.0 * f64::from(successes);
    (good / (good + 2.0 * f64::from(failures) + 4.0)) as f32
}

/// Whether `data` is exactly one JSON value (with surrounding whitespace), UTF-8 encoded.
pub fn is_json(data: &[u8]) -> bool {
    if std::str::from_utf8(data).is_err() {
        return false;
    }
    let mut p = Parser { b: data, i: 0 };
    p.ws();
    if p.value(0).is_none() {
        return false;
    }
    p.ws();
    p.i == data.len()
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

const DEPTH_MAX: usize = 512;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(s) {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > DEPTH_MAX {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string(),
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }
    fn string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek()?.is_ascii_hexdigit() {
                                    return None;
                                }
                                self.i += 1;
                            }
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }
    fn digits(&mut self) -> usize {
        let s = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - s
    }
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_validator_accepts_and_rejects() {
        for ok in [
            "{}",
            "[]",
            " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\n\"]} ",
            "0",
            "\"s\"",
            "[[[]]]",
        ] {
            assert!(is_json(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "{", "{\"a\":}", "[1,]", "01", "1.", "tru", "{} {}", "'a'", "\"\x01\"", "[1 2]",
            "{a:1}", "-", "1e",
        ] {
            assert!(!is_json(bad.as_bytes()), "{bad}");
        }
        assert!(!is_json("[".repeat(10_000).as_bytes()));
    }

    #[test]
    fn structure_by_kind() {
        assert_eq!(structure("json", b"{\"k\": 1}"), Some(1.0));
        assert_eq!(structure("json", b"{k: 1}"), Some(0.0));
        assert_eq!(structure("jsonl", b"1\n{\n[]\n"), Some(2.0 / 3.0));
        assert_eq!(structure("text", b"hi"), Some(1.0));
        assert_eq!(structure("text", &[0xff, 0xfe]), Some(0.0));
        assert_eq!(structure("markdown", b"```\ncode\n"), Some(0.5));
        assert_eq!(structure("markdown", b"# t\n```\ncode\n```\n"), Some(1.0));
        assert_eq!(structure("binary", &[0, 1, 2]), Some(1.0));
        assert_eq!(structure("python", b"x = 1"), None);
    }

    #[test]
    fn utility_grows_with_reuse_and_success() {
        assert!(utility(0, 0, 0).abs() < f32::EPSILON);
        assert!(utility(1, 0, 0) < utility(2, 0, 0));
        assert!(utility(0, 1, 0) > utility(1, 0, 0));
        assert!(utility(0, 1, 3) < utility(0, 1, 0));
        assert!(utility(1000, 1000, 0) < 1.0);
    }
}
