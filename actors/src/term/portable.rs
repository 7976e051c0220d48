//! Snapshots in the sequences every terminal reads: `avt`'s dump uses REP (`CSI n b`) for
//! runs of a character and colon-separated SGR colours (`38:5:n`, `38:2:r:g:b`), which some
//! terminals lack (macOS Terminal, older VTE); here they become repeated characters and
//! semicolon SGR. 8-bit controls become their 7-bit `ESC` forms.

/// `dump` with REP written out, colon SGR parameters as semicolons, C1 controls as `ESC` ones.
pub fn rewrite(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len() + dump.len() / 2);
    let mut last: Option<char> = None;
    let mut chars = dump.chars().peekable();
    while let Some(c) = chars.next() {
        let csi = match c {
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                true
            }
            '\u{1b}' => {
                // Another escape sequence: its intermediates and final byte print nothing.
                out.push(c);
                for p in chars.by_ref() {
                    out.push(p);
                    if !('\u{20}'..='\u{2f}').contains(&p) {
                        break;
                    }
                }
                continue;
            }
            '\u{9b}' => true,
            '\u{80}'..='\u{9f}' => {
                out.push('\u{1b}');
                out.push(char::from_u32(u32::from(c) - 0x40).unwrap_or('\\'));
                continue;
            }
            _ => false,
        };
        if !csi {
            if !c.is_control() {
                last = Some(c);
            }
            out.push(c);
            continue;
        }
        // Parameters and intermediates, up to the final byte.
        let mut params = String::new();
        let mut fin = None;
        for p in chars.by_ref() {
            if ('\u{40}'..='\u{7e}').contains(&p) {
                fin = Some(p);
                break;
            }
            params.push(p);
        }
        match fin {
            Some('b') if params.bytes().all(|b| b.is_ascii_digit()) => {
                let n: usize = params.parse().unwrap_or(1).max(1);
                if let Some(l) = last {
                    out.extend(std::iter::repeat_n(l, n));
                }
            }
            Some(f) => {
                out.push_str("\u{1b}[");
                if f == 'm' {
                    out.push_str(&params.replace(':', ";"));
                } else {
                    out.push_str(&params);
                }
                out.push(f);
            }
            None => {
                out.push_str("\u{1b}[");
                out.push_str(&params);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_colons_and_c1_are_rewritten() {
        assert_eq!(rewrite("a\u{1b}[3bx"), "aaaax");
        assert_eq!(rewrite("中\u{1b}[2b"), "中中中");
        assert_eq!(
            rewrite("\u{1b}[0;38:5:208;48:2:1:2:3mz\u{1b}[1;2H"),
            "\u{1b}[0;38;5;208;48;2;1;2;3mz\u{1b}[1;2H"
        );
        assert_eq!(rewrite("\u{9b}31m\u{1b}7"), "\u{1b}[31m\u{1b}7");
        assert_eq!(rewrite("x\u{1b}(0\u{1b}[2b"), "x\u{1b}(0xx");
        assert_eq!(rewrite("\u{1b}[b"), "", "nothing to repeat");
    }
}
