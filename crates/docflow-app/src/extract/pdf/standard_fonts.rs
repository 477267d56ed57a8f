//! The standard 14 fonts, which a PDF may use without embedding them or giving their
//! widths: which font a `/BaseFont` names (with the usual aliases such as `Arial,Bold` and
//! `TimesNewRomanPSMT`), and the width of each character from the fonts' metrics.

use super::tables;

/// The standard 14 fonts (and the common names of their metric twins), for their widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StandardFont {
    Helvetica,
    HelveticaBold,
    TimesRoman,
    TimesBold,
    TimesItalic,
    TimesBoldItalic,
    Courier,
    Symbol,
    ZapfDingbats,
}

impl StandardFont {
    /// The standard font a `/BaseFont` names, if it names one (`Arial,Bold` too).
    pub(super) fn from_name(name: &str) -> Option<Self> {
        let lower: String = name
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        let family = lower.split([',', '-']).next().unwrap_or_default();
        let bold = lower.contains("bold");
        let italic = lower.contains("italic") || lower.contains("oblique");
        Some(match family {
            "helvetica" | "arial" | "arialmt" => {
                if bold {
                    Self::HelveticaBold
                } else {
                    Self::Helvetica
                }
            }
            "times" | "timesroman" | "timesnewroman" | "timesnewromanps" | "timesnewromanpsmt" => {
                Self::times(bold, italic)
            }
            "courier" | "couriernew" | "couriernewps" | "couriernewpsmt" => Self::Courier,
            "symbol" | "symbolmt" => Self::Symbol,
            "zapfdingbats" => Self::ZapfDingbats,
            _ => return None,
        })
    }

    /// The standard font whose metrics best stand in for a font without widths.
    pub(super) fn substitute(name: &str) -> Self {
        let lower = name.to_lowercase();
        let bold = lower.contains("bold");
        let italic = lower.contains("italic") || lower.contains("oblique");
        if lower.contains("courier") || lower.contains("mono") {
            Self::Courier
        } else if lower.contains("times") || (lower.contains("serif") && !lower.contains("sans")) {
            Self::times(bold, italic)
        } else if bold {
            Self::HelveticaBold
        } else {
            Self::Helvetica
        }
    }

    fn times(bold: bool, italic: bool) -> Self {
        match (bold, italic) {
            (true, true) => Self::TimesBoldItalic,
            (true, false) => Self::TimesBold,
            (false, true) => Self::TimesItalic,
            (false, false) => Self::TimesRoman,
        }
    }

    /// The width (1/1000 em) of a code that stands for `c`.
    pub(super) fn width(self, code: u8, c: Option<char>) -> f64 {
        let table = match self {
            Self::Courier => return 600.0,
            Self::Symbol => return f64::from(tables::SYMBOL_WIDTHS[code as usize]),
            Self::ZapfDingbats => return f64::from(tables::ZAPF_DINGBATS_WIDTHS[code as usize]),
            Self::Helvetica => &tables::HELVETICA_WIDTHS,
            Self::HelveticaBold => &tables::HELVETICA_BOLD_WIDTHS,
            Self::TimesRoman => &tables::TIMES_ROMAN_WIDTHS,
            Self::TimesBold => &tables::TIMES_BOLD_WIDTHS,
            Self::TimesItalic => &tables::TIMES_ITALIC_WIDTHS,
            Self::TimesBoldItalic => &tables::TIMES_BOLD_ITALIC_WIDTHS,
        };
        let Some(c) = c else { return 0.0 };
        let Ok(unit) = u16::try_from(u32::from(c)) else {
            return 500.0;
        };
        match tables::LATIN_CHARS.binary_search(&unit) {
            Ok(index) => f64::from(table[index]),
            // A character the metrics lack: an average width keeps the layout plausible.
            Err(_) => 500.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_font_names_and_widths() {
        assert_eq!(
            StandardFont::from_name("Arial,Bold"),
            Some(StandardFont::HelveticaBold)
        );
        assert_eq!(
            StandardFont::from_name("Times-BoldItalic"),
            Some(StandardFont::TimesBoldItalic)
        );
        assert_eq!(StandardFont::from_name("Garamond"), None);
        assert_eq!(StandardFont::Helvetica.width(b'a', Some('a')), 556.0);
        assert_eq!(StandardFont::TimesRoman.width(b' ', Some(' ')), 250.0);
        assert_eq!(StandardFont::Courier.width(b'W', Some('W')), 600.0);
    }
}
