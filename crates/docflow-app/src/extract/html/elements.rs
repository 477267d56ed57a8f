//! The element categories of the HTML standard that the text extraction needs.

use html5ever::tokenizer::Tag;

pub(super) fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// Elements whose content is not readable text.
pub(super) fn is_dropped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "nav"
            | "svg"
            | "iframe"
            | "object"
            | "canvas"
            | "select"
            | "textarea"
            | "button"
            | "datalist"
            | "head"
            | "title"
            | "noembed"
            | "noframes"
            | "audio"
            | "video"
            | "meter"
            | "progress"
    )
}

/// `hidden`, `aria-hidden="true"` or an inline style that hides the element.
pub(super) fn hidden_by_attributes(tag: &Tag) -> bool {
    tag.attrs.iter().any(|attribute| {
        let value: &str = &attribute.value;
        match &*attribute.name.local {
            "hidden" => !value.trim().eq_ignore_ascii_case("until-found"),
            "aria-hidden" => value.trim().eq_ignore_ascii_case("true"),
            "style" => {
                let style: String = value
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .map(|c| c.to_ascii_lowercase())
                    .collect();
                style.contains("display:none") || style.contains("visibility:hidden")
            }
            _ => false,
        }
    })
}

/// Elements with no content and no end tag.
pub(super) fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "frame"
            | "hr"
            | "image"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Elements that may appear in the head without ending it.
pub(super) fn is_head_content(name: &str) -> bool {
    matches!(
        name,
        "base"
            | "basefont"
            | "bgsound"
            | "link"
            | "meta"
            | "title"
            | "noscript"
            | "noframes"
            | "style"
            | "script"
            | "template"
    )
}

/// Start tags that close an open `<p>`.
pub(super) fn closes_p(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "pre"
            | "listing"
            | "table"
            | "hr"
            | "xmp"
            | "li"
            | "dd"
            | "dt"
            | "plaintext"
    )
}

/// Elements that bound the default scope.
pub(super) fn is_boundary(name: &str) -> bool {
    matches!(
        name,
        "applet" | "caption" | "html" | "table" | "td" | "th" | "marquee" | "object" | "template"
    )
}

/// The standard's "special" category (the ones that can be open here).
pub(super) fn is_special(name: &str) -> bool {
    is_boundary(name)
        || closes_p(name)
        || matches!(
            name,
            "body"
                | "button"
                | "colgroup"
                | "frameset"
                | "head"
                | "iframe"
                | "noembed"
                | "noframes"
                | "noscript"
                | "script"
                | "select"
                | "style"
                | "tbody"
                | "textarea"
                | "tfoot"
                | "thead"
                | "title"
                | "tr"
        )
}

/// SVG and MathML elements whose content is HTML again.
pub(super) fn is_integration_point(name: &str) -> bool {
    matches!(
        name,
        "foreignobject" | "desc" | "title" | "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml"
    )
}

/// HTML start tags that end foreign content.
pub(super) fn breaks_out_of_foreign_content(tag: &Tag) -> bool {
    let name: &str = &tag.name;
    match name {
        "font" => tag
            .attrs
            .iter()
            .any(|attribute| matches!(&*attribute.name.local, "color" | "face" | "size")),
        _ => matches!(
            name,
            "b" | "big"
                | "blockquote"
                | "body"
                | "br"
                | "center"
                | "code"
                | "dd"
                | "div"
                | "dl"
                | "dt"
                | "em"
                | "embed"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "head"
                | "hr"
                | "i"
                | "img"
                | "li"
                | "listing"
                | "menu"
                | "meta"
                | "nobr"
                | "ol"
                | "p"
                | "pre"
                | "ruby"
                | "s"
                | "small"
                | "span"
                | "strong"
                | "strike"
                | "sub"
                | "sup"
                | "table"
                | "tt"
                | "u"
                | "ul"
                | "var"
        ),
    }
}
