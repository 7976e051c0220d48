//! Plain-text tables for people: a header and left-aligned columns padded by display width
//! (wide characters count twice), control characters shown as `?`.

use unicode_width::UnicodeWidthStr;

/// Renders `rows` under `header`, two spaces between columns, no trailing spaces.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| clean(h)).collect()];
    lines.extend(rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()));
    let mut widths = vec![0usize; header.len()];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.width());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w - cell.width()));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width() {
        let t = render(
            &["ID", "NAME"],
            &[
                vec!["s-1".into(), "日本".into()],
                vec!["s-22".into(), "a\u{1b}b".into()],
            ],
        );
        assert_eq!(t, "ID    NAME\ns-1   日本\ns-22  a?b\n");
    }
}
