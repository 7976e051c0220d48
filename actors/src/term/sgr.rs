//! SGR (Select Graphic Rendition) sequences for a pen: how history lines carry their colours
//! and attributes into a snapshot.

use avt::{Color, Pen};

/// Appends one SGR sequence that sets exactly `pen` (starting from a reset).
pub fn write(pen: &Pen, out: &mut Vec<u8>) {
    let mut s = String::from("\x1b[0");
    if pen.is_bold() {
        s.push_str(";1");
    }
    if pen.is_faint() {
        s.push_str(";2");
    }
    if pen.is_italic() {
        s.push_str(";3");
    }
    if pen.is_underline() {
        s.push_str(";4");
    }
    if pen.is_blink() {
        s.push_str(";5");
    }
    if pen.is_inverse() {
        s.push_str(";7");
    }
    if pen.is_strikethrough() {
        s.push_str(";9");
    }
    if let Some(c) = pen.foreground() {
        color(&mut s, c, 30);
    }
    if let Some(c) = pen.background() {
        color(&mut s, c, 40);
    }
    s.push('m');
    out.extend_from_slice(s.as_bytes());
}

fn color(s: &mut String, c: Color, base: u16) {
    use std::fmt::Write;
    let _ = match c {
        Color::Indexed(n) if n < 8 => write!(s, ";{}", base + u16::from(n)),
        Color::Indexed(n) if n < 16 => write!(s, ";{}", base + 60 + u16::from(n - 8)),
        Color::Indexed(n) => write!(s, ";{};5;{n}", base + 8),
        Color::RGB(rgb) => write!(s, ";{};2;{};{};{}", base + 8, rgb.r, rgb.g, rgb.b),
    };
}
